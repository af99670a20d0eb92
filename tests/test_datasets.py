"""Loaders read the shared VOC, COCO and ImageNet samples exactly; bad data fail clearly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from rise_bench.datasets import DatasetError, open_dataset
from rise_bench.datasets.labels import VOC_CLASSES, load_labelmap
from rise_bench.errors import UsageError
from rise_bench.metrics.pointing import is_difficult
from rise_bench.models import MappedClassifier

from .helpers import COCO_ROOT, IMAGENET_SAMPLE, VOC_ROOT


def test_voc_test_split_and_known_annotations():
    voc = open_dataset("voc", VOC_ROOT, "test")
    assert len(voc) == 36 and voc.ids[:3] == ["000027", "000068", "000175"]
    sample = voc.load("000027")
    assert sample.size == (500, 486)
    assert [voc.classes[c] for c in sample.labels] == ["person"]
    assert sample.boxes == [(VOC_CLASSES.index("person"), (174.0, 101.0, 349.0, 351.0))]
    assert sample.difficult == [False]
    assert sample.ground_truth(14).sum() == (349 - 174 + 1) * (351 - 101 + 1)
    assert len(open_dataset("voc", VOC_ROOT / "VOCdevkit", "trainval")) == 64


def test_computed_difficult_flags_reproduce_torchray():
    voc = open_dataset("voc", VOC_ROOT, "test")
    reference = {}
    for line in (VOC_ROOT / "pointing_difficult_ebp_voc07_test.txt").read_text().splitlines():
        parts = line.split()
        reference[parts[0]] = [int(v) for v in parts[1:]]
    total = 0
    for sample in voc:
        present = sample.pointing_labels()
        flags = [0] * 20
        for cls in present:
            flags[cls] = int(is_difficult(sample.ground_truth(cls), len(present) > 1))
        assert flags == reference[sample.id], sample.id
        total += sum(flags)
    assert total == 17


def test_classes_annotated_only_as_difficult_are_not_asked_about(tmp_path):
    base = tmp_path / "VOC2007"
    (base / "ImageSets" / "Main").mkdir(parents=True)
    (base / "Annotations").mkdir()
    (base / "JPEGImages").mkdir()
    shutil.copy(VOC_ROOT / "VOCdevkit/VOC2007/JPEGImages/000068.jpg", base / "JPEGImages/x.jpg")
    (base / "ImageSets/Main/test.txt").write_text("x\n")
    objects = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
        for n, d in [("dog", 1), ("cat", 0), ("cat", 1)]
    )
    (base / "Annotations/x.xml").write_text(f"<annotation>{objects}</annotation>")
    sample = open_dataset("voc", base).load("x")
    assert sample.labels == [VOC_CLASSES.index("cat"), VOC_CLASSES.index("dog")]
    assert sample.pointing_labels() == [VOC_CLASSES.index("cat")]


def test_voc_errors_name_the_problem(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset("voc", tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no VOC2007 layout"):
        open_dataset("voc", tmp_path)
    base = tmp_path / "VOC2007"
    (base / "ImageSets" / "Main").mkdir(parents=True)
    (base / "Annotations").mkdir()
    (base / "ImageSets/Main/test.txt").write_text("")
    with pytest.raises(DatasetError, match="lists no images"):
        open_dataset("voc", base)
    with pytest.raises(DatasetError, match="split 'val' not found"):
        open_dataset("voc", base, "val")
    (base / "ImageSets/Main/test.txt").write_text("a\nb\n")
    (base / "Annotations/a.xml").write_text("<annotation><object>")
    (base / "Annotations/b.xml").write_text("<annotation></annotation>")
    voc = open_dataset("voc", base)
    with pytest.raises(DatasetError, match=r"a\.xml: malformed XML"):
        voc.load("a")
    with pytest.raises(Exception, match=r"b\.jpg: no such file"):
        voc.load("b")


def test_coco_sample_with_masks():
    coco = open_dataset("coco", COCO_ROOT, "train2017")
    assert len(coco) == 128 and len(coco.classes) == 80 and coco.classes[0] == "person"
    sample = coco.load("9")
    assert sorted(coco.classes[c] for c in sample.labels) == ["bowl", "broccoli", "orange"]
    assert all(mask.shape == sample.size and mask.any() for mask in sample.masks.values())
    assert not coco.load("250").labels and not coco.load("508").labels
    assert sum(1 for s in coco if s.labels) == 126


def crowd_annotations() -> tuple[dict, dict]:
    """The sample's json and its first crowd annotation."""
    document = json.loads((COCO_ROOT / "annotations/instances_train2017.json").read_text())
    return document, next(a for a in document["annotations"] if a["iscrowd"])


def crowd_case():
    """The shared sample's first crowd: (data set, json, annotation, its sample, its class, its mask)."""
    coco = open_dataset("coco", COCO_ROOT, "train2017")
    document, crowd = crowd_annotations()
    sample = coco.load(str(crowd["image_id"]))
    label = coco.category_ids.index(crowd["category_id"])
    return coco, document, crowd, sample, label, coco.coco.annToMask(crowd).astype(bool)


def test_coco_crowd_regions_are_ground_truth_as_in_torchray():
    coco, document, crowd, sample, label, crowd_mask = crowd_case()
    instances = [
        a
        for a in document["annotations"]
        if a["image_id"] == crowd["image_id"] and a["category_id"] == crowd["category_id"]
    ]
    union = np.zeros(sample.size, dtype=bool)
    for annotation in instances:  # TorchRay's coco_as_mask: every annotation of the class, crowds included
        union |= coco.coco.annToMask(annotation).astype(bool)
    np.testing.assert_array_equal(sample.ground_truth(label), union)
    assert (sample.ground_truth(label) & crowd_mask).any()
    np.testing.assert_array_equal(
        sample.ground_truth(label, crowds=False), sample.masks.get(label, np.zeros(sample.size, bool))
    )


def test_a_point_on_a_crowd_region_is_a_hit_unless_crowds_are_left_out():
    from scipy.ndimage import distance_transform_edt

    from rise_bench.metrics import SampleContext, create_metric

    coco, _, _, sample, label, crowd_mask = crowd_case()
    far = distance_transform_edt(~sample.ground_truth(label, crowds=False)) > 20
    rows, cols = np.nonzero(crowd_mask & far)  # on the crowd, far from every instance of the class
    saliency = torch.zeros(sample.size)
    saliency[rows[0], cols[0]] = 1.0
    context = SampleContext(
        sample=sample,
        image=torch.zeros(1, 3, 8, 8),
        model=None,
        probabilities=torch.zeros(1),
        target=0,
        annotated_model="model",
        classes=coco.classes,
        scorable=frozenset(range(80)),
    )
    hits = {}
    for crowds in (True, False):
        metric = create_metric("pointing", crowds=crowds)
        preparation = metric.prepare(context)
        maps = saliency[None].expand(len(preparation.targets), -1, -1)
        column = preparation.targets.index(label)
        scores = [s for s in metric.score(preparation, maps, batch_size=1).rows if s.subset == "all"]
        hits[crowds] = scores[column].value
    assert hits == {True: 1.0, False: 0.0}


def test_a_category_present_only_as_a_crowd_is_played(tmp_path):
    document, crowd = crowd_annotations()
    image_id = crowd["image_id"]
    kept = [a for a in document["annotations"] if a["image_id"] == image_id]
    kept = [a for a in kept if a["category_id"] != crowd["category_id"] or a["iscrowd"]]  # only the crowd left
    derived = {**document, "images": [i for i in document["images"] if i["id"] == image_id], "annotations": kept}
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_crowd.json").write_text(json.dumps(derived))
    image = next(i for i in document["images"] if i["id"] == image_id)
    (tmp_path / "crowd").mkdir()
    shutil.copy(COCO_ROOT / "train2017" / image["file_name"], tmp_path / "crowd" / image["file_name"])
    coco = open_dataset("coco", tmp_path, "crowd")
    sample = coco.load(str(image_id))
    label = coco.category_ids.index(crowd["category_id"])
    assert label not in sample.masks and label in sample.crowd_masks
    assert label in sample.labels and label in sample.pointing_labels()
    assert label not in sample.pointing_labels(crowds=False)
    assert sample.ground_truth(label).any() and not sample.ground_truth(label, crowds=False).any()


def test_coco_errors(tmp_path):
    (tmp_path / "val2017").mkdir()
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset("coco", tmp_path)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/instances_val2017.json").write_text("{not json")
    with pytest.raises(DatasetError, match="malformed"):
        open_dataset("coco", tmp_path)


def test_imagenet_layouts(tmp_path):
    sample = open_dataset("imagenet", IMAGENET_SAMPLE)
    assert len(sample) == 200
    first = sample.load("n01440764_tench")
    assert first.labels == [0] and sample.classes[0] == "tench"
    assert sample.load("n02124075_Egyptian_cat").labels == [285]
    folder = tmp_path / "train"
    (folder / "n01440764").mkdir(parents=True)
    (folder / "n02124075").mkdir(parents=True)
    shutil.copy(IMAGENET_SAMPLE / "n01440764_tench.JPEG", folder / "n01440764/a.JPEG")
    shutil.copy(IMAGENET_SAMPLE / "n02124075_Egyptian_cat.JPEG", folder / "n02124075/b.JPEG")
    image_folder = open_dataset("imagenet", folder)
    assert [image_folder.load(i).labels for i in image_folder.ids] == [[0], [285]]
    flat = tmp_path / "val"
    flat.mkdir()
    shutil.copy(IMAGENET_SAMPLE / "n02124075_Egyptian_cat.JPEG", flat / "ILSVRC2012_val_00000001.JPEG")
    (flat / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000001,n02124075 1 2 3 4 n02124075 5 6 7 8\n"
    )
    assert open_dataset("imagenet", flat).load("ILSVRC2012_val_00000001").labels == [285]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no ImageNet images"):
        open_dataset("imagenet", empty)


def test_subsets_and_unknown_names(tmp_path):
    voc = open_dataset("voc", VOC_ROOT).subset(limit=5)
    assert len(voc) == 5
    ids = tmp_path / "ids.txt"
    ids.write_text("000175\n000068\n")
    assert open_dataset("voc", VOC_ROOT).subset(ids=ids).ids == ["000175", "000068"]
    first = open_dataset("voc", VOC_ROOT).subset(sample=4, seed=1).ids
    assert first == open_dataset("voc", VOC_ROOT).subset(sample=4, seed=1).ids and len(first) == 4
    assert first != open_dataset("voc", VOC_ROOT).subset(sample=4, seed=2).ids
    ids.write_text("999999\n")
    with pytest.raises(DatasetError, match="999999"):
        open_dataset("voc", VOC_ROOT).subset(ids=ids)
    with pytest.raises(UsageError, match="did you mean: coco"):
        open_dataset("cocoo", COCO_ROOT)
    with pytest.raises(UsageError, match="needs --root"):
        open_dataset("voc")
    assert open_dataset("samples").ids[0] == "chelsea"


def test_label_maps_and_the_mapped_classifier(tmp_path, default_model):
    voc = load_labelmap("voc")
    assert voc["cat"] == [281, 282, 283, 284, 285] and voc["person"] == [] and len(voc["dog"]) == 118
    assert len(load_labelmap("coco")) == 80
    bad = tmp_path / "bad.toml"
    bad.write_text('[classes]\ncat = ["281 dog"]\n')
    with pytest.raises(DatasetError, match="is 'tabby', not 'dog'"):
        load_labelmap(bad)
    mapped = MappedClassifier(default_model, {"cat": voc["cat"], "person": []})
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        probabilities = default_model.scores(images, "softmax")
        summed = mapped.scores(images, "softmax")
        logits = mapped.scores(images, "logit")
    torch.testing.assert_close(summed[:, 0], probabilities[:, 281:286].sum(1))
    torch.testing.assert_close(logits[:, 0], probabilities[:, 281:286].sum(1).log())
    assert float(summed[:, 1].max()) < 1e-20
    assert mapped.classes == ["cat", "person"] and mapped.cam_layer is default_model.cam_layer


def voc_with_objects(tmp_path, objects: list[tuple[str, tuple]]):
    """A one-image VOC layout (a real 500x375 photograph) whose annotation holds ``objects``."""
    base = tmp_path / "VOC2007"
    for folder in ("ImageSets/Main", "Annotations", "JPEGImages"):
        (base / folder).mkdir(parents=True)
    shutil.copy(VOC_ROOT / "VOCdevkit/VOC2007/JPEGImages/000068.jpg", base / "JPEGImages/x.jpg")
    (base / "ImageSets/Main/test.txt").write_text("x\n")
    nodes = []
    for name, box in objects:
        if not box:
            nodes.append(f"<object><name>{name}</name></object>")
            continue
        inner = "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True))
        nodes.append(f"<object><name>{name}</name><bndbox>{inner}</bndbox></object>")
    (base / "Annotations/x.xml").write_text(f"<annotation>{''.join(nodes)}</annotation>")
    return base


def test_voc_boxes_are_clipped_and_inverted_or_outside_ones_dropped_with_a_line(tmp_path):
    base = voc_with_objects(
        tmp_path,
        [
            ("cat", (-20, 300, 40, 420)),  # overlaps the 500x375 image: clipped
            ("dog", (50, 60, 10, 90)),  # inverted: dropped, and dog has no other box
            ("bird", (600, 10, 700, 50)),  # wholly outside: dropped
            ("bird", (20, 30, 60, 80)),  # bird keeps this one
            ("cow", ()),  # no bndbox: skipped
        ],
    )
    told: list[str] = []
    voc = open_dataset("voc", base)
    voc.warn = told.append
    sample = voc.load("x")
    cat, dog, bird = (VOC_CLASSES.index(n) for n in ("cat", "dog", "bird"))
    assert sample.size == (375, 500)
    assert sample.boxes == [(cat, (1.0, 300.0, 40.0, 375.0)), (bird, (20.0, 30.0, 60.0, 80.0))]
    assert sample.labels == [bird, cat] and sample.unplayable == [dog]
    assert len(told) == 3
    assert "x.xml: object 2 (dog) is inverted" in told[1] and "object 3 (bird) lies wholly outside" in told[2]
    assert "x.xml: object 5 has no name or no bndbox" in told[0]
    assert sample.ground_truth(cat)[299:375, 0:40].all() and sample.ground_truth(cat).sum() == 76 * 40


def test_a_voc_class_without_a_valid_box_is_not_played_and_counted(tmp_path):
    from rise_bench.evaluation.config import RunConfig
    from rise_bench.evaluation.runner import evaluate

    base = voc_with_objects(tmp_path, [("dog", (50, 60, 10, 90)), ("cat", (100, 50, 300, 300))])
    told: list[str] = []
    out = tmp_path / "run"
    outcome = evaluate(RunConfig(dataset="voc", root=str(base), methods=["center"], out=str(out)), log=told.append)
    assert outcome.skipped_classes == {"dog (no valid annotation)": 1} and not outcome.failures
    rows = pd.read_csv(out / "results.csv")
    assert set(rows.target) == {"cat"}  # no silent miss for dog
    assert sum("object 1 (dog) is inverted" in line for line in told) == 1
    voc = voc_with_objects(tmp_path / "none", [("cow", ()), ("dog", ("a", 1, 2, 3))])
    broken = open_dataset("voc", voc)
    broken.warn = told.append
    with pytest.raises(DatasetError, match="none of its 2 object"):
        broken.load("x")
    assert "object 1 has no name or no bndbox" in told[-2] and "object 2 has a malformed bndbox" in told[-1]


def coco_with(tmp_path, edit) -> tuple[str, list[str]]:
    """The shared COCO sample's first three images, annotations changed by ``edit(document)``."""
    document = json.loads((COCO_ROOT / "annotations/instances_train2017.json").read_text())
    first = sorted(i["id"] for i in document["images"])[:3]
    document["images"] = [i for i in document["images"] if i["id"] in first]
    document["annotations"] = [a for a in document["annotations"] if a["image_id"] in first]
    edit(document)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/instances_train2017.json").write_text(json.dumps(document))
    (tmp_path / "train2017").symlink_to(COCO_ROOT / "train2017")
    return str(tmp_path), [str(i) for i in sorted(first)]


def test_a_coco_annotation_of_an_unknown_category_is_skipped_and_the_run_goes_on(tmp_path):
    from rise_bench.evaluation.config import RunConfig
    from rise_bench.evaluation.runner import evaluate

    changed = {}

    def edit(document):
        ids = sorted(i["id"] for i in document["images"])
        of = {i: [a for a in document["annotations"] if a["image_id"] == i] for i in ids}
        of[ids[0]][0]["category_id"] = 999  # one bad annotation among eight: skipped
        for annotation in of[ids[1]]:  # every annotation bad: the sample fails alone
            annotation["category_id"] = 999
        changed.update(first=of[ids[0]][0]["id"], second=[a["id"] for a in of[ids[1]]])

    root, ids = coco_with(tmp_path, edit)
    told: list[str] = []
    out = tmp_path / "run"
    outcome = evaluate(
        RunConfig(dataset="coco", root=root, split="train2017", methods=["center"], out=str(out)), log=told.append
    )
    rows = pd.read_csv(out / "results.csv", dtype={"sample_id": str})
    assert set(rows.sample_id) == {ids[0], ids[2]}  # the good image after the bad one keeps its rows
    assert len(outcome.failures) == 1 and f"image {ids[1]} is valid" in outcome.failures[0]
    assert any(f"annotation {changed['first']} of image {ids[0]}: category_id 999" in line for line in told)
    assert (out / "summary.csv").is_file()
    coco = open_dataset("coco", root, "train2017")
    coco.warn = told.append
    clean = open_dataset("coco", COCO_ROOT, "train2017").load(ids[0])
    assert len(coco.load(ids[0]).boxes) == len(clean.boxes) - 1
