"""Download the real datasets on a machine with internet, into data/ (or --root).

    python data/get_datasets.py fashion_mnist cifar10 cifar100

Then copy the folder to an offline machine, or point KDLAB_DATA at it. Fashion-MNIST is also
available offline on Debian/Ubuntu: `sudo apt-get install dataset-fashion-mnist`.
"""

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="+", choices=["fashion_mnist", "cifar10", "cifar100"])
    ap.add_argument("--root", default=str(ROOT))
    args = ap.parse_args()
    import torchvision

    from kdlab.datasets import load_dataset

    root = Path(args.root)
    for name in args.datasets:
        if name == "fashion_mnist":
            torchvision.datasets.FashionMNIST(root=str(root), train=True, download=True)
            torchvision.datasets.FashionMNIST(root=str(root), train=False, download=True)
            check_root = root
        else:
            cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
            for train in (True, False):
                cls(root=str(root / "cifar"), train=train, download=True)
            check_root = root / "cifar"
        for split in ("train", "test"):
            data = load_dataset(name, split, root=check_root)
            print(f"{name} {split}: {len(data)} images {tuple(data.images.shape[1:])}, "
                  f"{data.num_classes} classes - OK")


if __name__ == "__main__":
    main()
