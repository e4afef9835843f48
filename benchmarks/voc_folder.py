"""A VOC-format folder made from the embedded digits scenes, for checks that need a real folder
on disk (the GPU check's campaign, the README's VOC command) and no download.

Usage: python benchmarks/voc_folder.py OUT [--pool 60] [--test 20] [--size 500x375]
Each canvas is resized to the given size (the paper's VOC images are about 500x375) and its
boxes scaled with it; classes are the digits' names, written to classes.txt.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def write_voc_folder(out: Path, pool: int = 60, test: int = 20,
                     size: tuple[int, int] = (500, 375), seed: int = 0) -> Path:
    """OUT with JPEGImages/, Annotations/ and ImageSets/Main/{trainval,test}.txt; returns OUT."""
    from PIL import Image

    from harness.datasets.digits import DigitsConfig, build_digits

    ds = build_digits(DigitsConfig(pool_size=pool, test_size=test, seed=seed))
    out = Path(out)
    for d in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (out / d).mkdir(parents=True, exist_ok=True)
    width, height = size
    for split, listing in (("pool", "trainval"), ("test", "test")):
        images, names = ds.splits[split], []
        for i in range(len(images)):
            name = f"{split}_{i:05d}"
            array = images.image(i)
            sx, sy = width / array.shape[1], height / array.shape[0]
            Image.fromarray(array).resize((width, height)).save(out / "JPEGImages" / f"{name}.jpg")
            boxes, labels, ignore = images.targets(i)
            objects = "".join(
                f"<object><name>{ds.classes[int(c)]}</name><difficult>{int(bool(ig))}</difficult>"
                f"<bndbox><xmin>{b[0] * sx + 1:.0f}</xmin><ymin>{b[1] * sy + 1:.0f}</ymin>"
                f"<xmax>{b[2] * sx:.0f}</xmax><ymax>{b[3] * sy:.0f}</ymax></bndbox></object>"
                for b, c, ig in zip(boxes, labels, ignore, strict=True))
            (out / "Annotations" / f"{name}.xml").write_text(
                f"<annotation><filename>{name}.jpg</filename><size><width>{width}</width>"
                f"<height>{height}</height><depth>3</depth></size>{objects}</annotation>")
            names.append(name)
        (out / "ImageSets" / "Main" / f"{listing}.txt").write_text("\n".join(names) + "\n")
    (out / "classes.txt").write_text("\n".join(ds.classes) + "\n")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--pool", type=int, default=60)
    ap.add_argument("--test", type=int, default=20)
    ap.add_argument("--size", default="500x375", help="WIDTHxHEIGHT (default 500x375)")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    print(write_voc_folder(Path(args.out), args.pool, args.test, (w, h)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
