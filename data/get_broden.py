"""Download Broden (broden1_224, about 1 GB) on a machine with internet, unpack and check it.

    python data/get_broden.py                 # into data/broden1_224
    python data/get_broden.py --root /big/disk --check-images 500

Then copy the folder to the machine that runs the notebooks (or point KDLAB_DATA at it) and
run notebooks 03/04 with params/imagenet_dissect.yaml. The check reads every CSV file with
kdlab.scale.broden.BrodenDataset (which names the file and line of anything malformed), confirms
the size of the dataset (63,305 images of 224×224, masks 112×112) and decodes a sample of
images and segmentation PNGs.
"""

import argparse
import hashlib
import shutil
import sys
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
URL = "http://netdissect.csail.mit.edu/data/broden1_224.zip"   # as NetDissect-Lite's script/dlbroden.sh
EXPECTED_IMAGES = 63305
EXPECTED_CATEGORIES = ["color", "object", "material", "part", "scene", "texture"]


def download(url: str, target: Path) -> None:
    """Stream `url` to `target` (resuming is left to a rerun: a partial file is replaced)."""
    tmp = target.with_suffix(".part")
    with urllib.request.urlopen(url) as response, open(tmp, "wb") as out:
        total = int(response.headers.get("Content-Length", 0))
        done = 0
        while chunk := response.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            if total:
                print(f"\r{done / 2**20:,.0f} / {total / 2**20:,.0f} MiB", end="", flush=True)
    print()
    tmp.replace(target)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def check(folder: Path, sample: int) -> None:
    """Read the whole index with kdlab's reader and decode `sample` images with their masks."""
    sys.path.insert(0, str(ROOT.parent))
    from kdlab.scale.broden import BrodenDataset

    ds = BrodenDataset(folder)
    print(f"{folder}: {len(ds):,} images, {len(ds.concepts) - 1:,} labels, "
          f"categories {ds.categories}, masks {ds.mask_size}")
    problems = []
    if len(ds) != EXPECTED_IMAGES:
        problems.append(f"expected {EXPECTED_IMAGES:,} images, found {len(ds):,}")
    if ds.categories != EXPECTED_CATEGORIES:
        problems.append(f"expected categories {EXPECTED_CATEGORIES}, found {ds.categories}")
    if tuple(ds.mask_size) != (112, 112):
        problems.append(f"expected 112×112 masks, found {ds.mask_size}")
    step = max(1, len(ds) // max(sample, 1))
    for i in range(0, len(ds), step)[:sample]:
        image, _, _ = ds.item(i)     # raises, naming the file and index.csv line, if unreadable
        if tuple(image.shape) != (3, 224, 224):
            problems.append(f"image {i} is {tuple(image.shape)}, expected (3, 224, 224)")
    print(f"decoded {min(sample, len(ds))} images and their masks")
    if problems:
        raise SystemExit("Broden check FAILED:\n  " + "\n  ".join(problems))
    print("Broden check OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(ROOT), help="folder that will hold broden1_224/")
    ap.add_argument("--url", default=URL)
    ap.add_argument("--sha256", default=None, help="if given, the zip file must have this digest")
    ap.add_argument("--check-images", type=int, default=200, help="images (with masks) to decode")
    ap.add_argument("--keep-zip", action="store_true")
    args = ap.parse_args()

    root = Path(args.root)
    folder = root / "broden1_224"
    if not (folder / "index.csv").exists():
        root.mkdir(parents=True, exist_ok=True)
        zip_path = root / "broden1_224.zip"
        if not zip_path.exists():
            print(f"downloading {args.url} (about 1 GB)")
            download(args.url, zip_path)
        digest = sha256(zip_path)
        print(f"sha256 {digest}")
        if args.sha256 and digest != args.sha256.lower():
            raise SystemExit(f"{zip_path}: sha256 {digest} is not the expected {args.sha256}; "
                             "delete it and download again")
        print(f"unpacking into {root}")
        with zipfile.ZipFile(zip_path) as z:
            bad = z.testzip()
            if bad is not None:
                raise SystemExit(f"{zip_path}: member {bad} is corrupt; delete the zip and retry")
            z.extractall(root)
        if not args.keep_zip:
            zip_path.unlink()
        if not (folder / "index.csv").exists():
            found = [p for p in root.iterdir() if p.is_dir()]
            raise SystemExit(f"the archive did not unpack to {folder}; found {found}")
    check(folder, args.check_images)
    free = shutil.disk_usage(root).free
    print(f"{free / 2**30:.1f} GiB left on {root}")


if __name__ == "__main__":
    main()
