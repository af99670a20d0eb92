"""Write rise_bench/labelmaps/{voc,coco}.toml: ImageNet-1k classes behind each VOC/COCO class.

A VOC or COCO class scores as the sum of the softmax probabilities of its ImageNet
classes. The lists follow the WordNet hierarchy where ImageNet has a clean counterpart
(all 118 dog breeds for 'dog', all 59 bird classes for 'bird'); classes without one
(person, giraffe, ...) are left empty and are skipped, and counted, by the evaluation.
Each entry is "INDEX name" so the file can be read and is checked against the names.

Run: python scripts/make_labelmaps.py
"""

from pathlib import Path

from rise_bench.models import _imagenet_names

BIRDS = [*range(7, 25), *range(80, 101), *range(127, 147)]
DOGS = list(range(151, 269))
CATS = [281, 282, 283, 284, 285]
AIRPLANE = [404, 895]
BICYCLE = [444, 671]
BOAT = [403, 472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 914]
BOTTLE = [440, 720, 737, 898, 907]
BUS = [654, 779, 874]
CAR = [436, 468, 511, 609, 627, 656, 661, 717, 734, 751, 817]
CHAIR = [423, 559, 765, 857]
COW = [345, 346, 347]
TABLE = [532]
HORSE = [339, 603]
MOTORBIKE = [665, 670]
PLANT = [738]
SHEEP = [348, 349]
SOFA = [831]
TRAIN = [466, 547, 565, 705, 820]
TV = [664, 782, 851]

VOC = {
    "aeroplane": AIRPLANE,
    "bicycle": BICYCLE,
    "bird": BIRDS,
    "boat": BOAT,
    "bottle": BOTTLE,
    "bus": BUS,
    "car": CAR,
    "cat": CATS,
    "chair": CHAIR,
    "cow": COW,
    "diningtable": TABLE,
    "dog": DOGS,
    "horse": HORSE,
    "motorbike": MOTORBIKE,
    "person": [],
    "pottedplant": PLANT,
    "sheep": SHEEP,
    "sofa": SOFA,
    "train": TRAIN,
    "tvmonitor": TV,
}

COCO = {
    "person": [],
    "bicycle": BICYCLE,
    "car": CAR,
    "motorcycle": MOTORBIKE,
    "airplane": AIRPLANE,
    "bus": BUS,
    "train": TRAIN,
    "truck": [555, 569, 675, 864, 867],
    "boat": BOAT,
    "traffic light": [920],
    "fire hydrant": [],
    "stop sign": [919],
    "parking meter": [704],
    "bench": [703],
    "bird": BIRDS,
    "cat": CATS,
    "dog": DOGS,
    "horse": HORSE,
    "sheep": SHEEP,
    "cow": COW,
    "elephant": [101, 385, 386],
    "bear": [294, 295, 296, 297],
    "zebra": [340],
    "giraffe": [],
    "backpack": [414],
    "umbrella": [879],
    "handbag": [748],
    "tie": [457, 906],
    "suitcase": [],
    "frisbee": [],
    "skis": [795],
    "snowboard": [],
    "sports ball": [429, 430, 574, 768, 805, 852, 890],
    "kite": [],
    "baseball bat": [],
    "baseball glove": [],
    "skateboard": [],
    "surfboard": [],
    "tennis racket": [752],
    "bottle": BOTTLE,
    "wine glass": [572],
    "cup": [504, 968],
    "fork": [],
    "knife": [499],
    "spoon": [910],
    "bowl": [659, 809],
    "banana": [954],
    "apple": [948],
    "sandwich": [],
    "orange": [950],
    "broccoli": [937],
    "carrot": [],
    "hot dog": [934],
    "pizza": [963],
    "donut": [],
    "cake": [],
    "chair": CHAIR,
    "couch": SOFA,
    "potted plant": PLANT,
    "bed": [564],
    "dining table": TABLE,
    "toilet": [861],
    "tv": TV,
    "laptop": [620, 681],
    "mouse": [673],
    "remote": [761],
    "keyboard": [508],
    "cell phone": [487],
    "microwave": [651],
    "oven": [],
    "toaster": [859],
    "sink": [896],
    "refrigerator": [760],
    "book": [],
    "clock": [409, 530, 892],
    "vase": [883],
    "scissors": [],
    "teddy bear": [850],
    "hair drier": [589],
    "toothbrush": [],
}


def write(name: str, table: dict[str, list[int]], names: list[str]) -> None:
    lines = [
        f"# ImageNet-1k classes behind each {name.upper()} class (written by scripts/make_labelmaps.py).",
        "# A class scores as the summed softmax probability of its ImageNet classes; an empty",
        "# list means no ImageNet counterpart: the class is skipped and counted.",
        "",
        "[classes]",
    ]
    for cls, indices in table.items():
        entries = ", ".join(f'"{i} {names[i]}"' for i in indices)
        lines.append(f'"{cls}" = [{entries}]')
    path = Path(__file__).resolve().parents[1] / "rise_bench" / "labelmaps" / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}: {sum(1 for v in table.values() if v)} of {len(table)} classes mapped")


if __name__ == "__main__":
    imagenet = _imagenet_names()
    write("voc", VOC, imagenet)
    write("coco", COCO, imagenet)
