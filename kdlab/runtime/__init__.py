"""What runs around the science: files, devices, checkpoints, progress, parallel jobs and the two
ends of a notebook. The core (kdlab/*.py) imports these modules; they import nothing else of
kdlab, so the core reads without them.

    files        where data, checkpoints and results live; atomic writes
    device       which device trains, and on how many CPU threads
    checkpoints  checkpoint files: keys, atomic writing, reading back with clear errors
    progress     progress bars; one summary line for many cached models   (notebook 01)
    parallel     several models trained at once on a many-core CPU        (notebook 02)
    notebook     a notebook's parameters in, its results out              (notebook 00)
    moved        names that moved keep working, with a DeprecationWarning
"""
