"""Full runs beyond a laptop, wrapped around the kdlab core (never imported by it).

    distributed  several processes under torchrun: the DDP strategy for kdlab.train.fit
    imagenet     ImageNet-style folders streamed from disk with worker processes
    broden       Broden folders on disk as concept data for dissection (notebooks 03, 04)
    pretrained   torchvision's pretrained weights and checkpoints written by other code
    realdata     Waterbirds, PASCAL VOC, ImageNet few-shot and pretrained teachers (e²KD full runs)
    cli          `python -m kdlab.scale.cli train ...`: one teacher or student from the command line
"""
