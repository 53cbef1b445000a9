"""Model cards: portable paths, and the Markdown sections users know, for every shipped model."""

import json
import os

import pytest

from kgen.export.model_card import REPOSITORY, card_markdown, portable
from tests.test_recipes import ROOT

SECTIONS = ["## Model", "## Intended use", "## Limitations", "## Training data", "## Training procedure",
            "## Evaluation", "## License"]
SHIPPED = sorted(name[:-5] for name in os.listdir(os.path.join(ROOT, "exported"))
                 if name.endswith(".json") and os.path.isfile(os.path.join(ROOT, "exported", name[:-5] + ".onnx")))


def test_paths_become_relative_to_the_repository_or_home():
    home = os.path.expanduser("~")
    card = {"from": os.path.join(REPOSITORY, "exported", "x.onnx"),
            "chunks": [{"command": f"python recipes/train_ddpm.py --output-dir {home}/kgen-runs/x"}]}
    assert portable(card) == {"from": "exported/x.onnx",
                              "chunks": [{"command": "python recipes/train_ddpm.py --output-dir ~/kgen-runs/x"}]}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_card_is_portable_and_has_its_markdown(name):
    with open(os.path.join(ROOT, "exported", name + ".json")) as f:
        text = f.read()
    assert REPOSITORY not in text and os.path.expanduser("~") + "/" not in text, name
    with open(os.path.join(ROOT, "exported", name + ".md")) as f:
        markdown = f.read()
    assert markdown == card_markdown(json.loads(text)), f"{name}.md is stale: python -m kgen.export exported " \
                                                        "--refresh-cards"
    positions = [markdown.index(section) for section in SECTIONS]
    assert positions == sorted(positions)


def test_scores_go_into_an_exported_models_card(tmp_path):
    import shutil

    from kgen.export.__main__ import main as export_main

    for suffix in (".onnx", ".json"):
        shutil.copy(os.path.join(ROOT, "exported", "mnist_generator" + suffix), tmp_path / ("m" + suffix))
    scores = {"source": "m.onnx", "reference": "mnist:test", "num_real": 10,
              "settings": [{"options": {}, "num_generated": 10, "fid_classifier[mnist]": {"value": 12.5}}],
              "command": "python -m kgen.evaluate m.onnx --num-samples 10"}
    (tmp_path / "scores.json").write_text(json.dumps(scores))
    assert export_main([str(tmp_path / "m.onnx"), "--card-metrics", str(tmp_path / "scores.json")]) is None
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["metrics"]["settings"][0]["fid_classifier[mnist]"]["value"] == 12.5
    markdown = (tmp_path / "m.md").read_text()
    assert "| {} | 10 | 12.50 | - | - |" in markdown and "python -m kgen.evaluate m.onnx" in markdown
