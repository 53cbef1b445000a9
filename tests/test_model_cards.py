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
