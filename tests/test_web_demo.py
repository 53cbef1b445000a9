"""The browser demo: web/ draws MNIST and CIFAR-10 samples with onnxruntime-web, as Python's onnxruntime does."""

import json
import math
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

pytestmark = [
    pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="backend-independent; runs under tensorflow"),
    pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium; .ci/run does)"),
    pytest.mark.skipif(not (WEB / "node_modules" / "onnxruntime-web" / "dist").is_dir(),
                       reason="needs onnxruntime-web: npm ci --prefix web (.ci/run does)"),
]


def js_noise(seed, count):
    """web/app.js's noiseFromSeed: mulberry32 uniforms, Box-Muller normals, as float32."""
    state = seed & 0xFFFFFFFF

    def uniform():
        nonlocal state
        state = (state + 0x6D2B79F5) & 0xFFFFFFFF
        t = ((state ^ (state >> 15)) * (1 | state)) & 0xFFFFFFFF
        t = ((t + (((t ^ (t >> 7)) * (61 | t)) & 0xFFFFFFFF)) & 0xFFFFFFFF) ^ t
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    out = np.zeros(count, np.float32)
    for i in range(0, count, 2):
        u, v = max(uniform(), 1e-12), uniform()
        r = math.sqrt(-2.0 * math.log(u))
        out[i] = r * math.cos(2.0 * math.pi * v)
        if i + 1 < count:
            out[i + 1] = r * math.sin(2.0 * math.pi * v)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=WEB,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.parametrize("model, sampler, label, seed, guidance", [
    ("mnist", "mnist_sampler", 3, 7, 2.0),
    ("cifar10", "cifar10_sampler_fast", 5, 11, 3.0),
])
def test_the_page_draws_the_python_samplers_image_from_local_files_only(server, model, sampler, label, seed, guidance):
    playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")
    import onnxruntime as ort

    requests = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.goto(f"{server}/index.html?model={model}&class={label}&seed={seed}&guidance={guidance:g}&auto=1")
        page.wait_for_selector("#status[data-done]", timeout=180_000)
        status = page.inner_text("#status")
        result = page.evaluate("window.kgenResult")
        browser.close()
    assert result is not None, status
    assert result["model"] == model and result["label"] == label and result["seed"] == seed and result["ms"] > 0
    # The same graph in Python's onnxruntime, from the same noise.
    card = json.loads((ROOT / "exported" / f"{sampler}.json").read_text())
    shape = tuple(card["image_shape"])
    session = ort.InferenceSession(str(ROOT / "exported" / f"{sampler}.onnx"), providers=["CPUExecutionProvider"])
    noise = js_noise(seed, math.prod(shape)).reshape(1, *shape)
    images = session.run(["images"], {"noise": noise, "labels": np.array([label], np.int32),
                                      "guidance_scale": np.array(guidance, np.float32)})[0]
    want = np.clip(np.round((images.reshape(-1).astype(np.float64) + 1.0) * 127.5), 0, 255)
    got = np.asarray(result["pixels"], np.float64)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 2 and np.abs(got - want).mean() < 0.05, (np.abs(got - want).max(),)
    assert requests and all(url.startswith(server + "/") for url in requests), sorted(set(requests))
    assert f"{card['sampler']}-{card['num_steps']}" in status and "drawn in" in status
    assert card["class_names"][label] in status
    assert os.path.islink(WEB / "models" / f"{sampler}.onnx")  # model files live in exported/ only


def test_the_page_names_an_unknown_model_or_class(server):
    playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        statuses = []
        for query in ("model=imagenet", "model=cifar10&class=10"):
            page.goto(f"{server}/index.html?{query}&auto=1")
            page.wait_for_selector("#status[data-done]", timeout=180_000)
            statuses.append(page.inner_text("#status"))
        browser.close()
    assert "unknown model \"imagenet\"; choose one of mnist, cifar10" in statuses[0], statuses[0]
    assert "class must be 0..9; got 10" in statuses[1], statuses[1]
