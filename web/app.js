// kgen web demo: the MNIST sampler graph (kgen.export --sampler) run by onnxruntime-web.
//
// Query parameters (the test uses them): ?digit=3&seed=7&guidance=2&auto=1 draws at once;
// the result is left in window.kgenResult = {digit, seed, guidance, ms, pixels} and
// #status gets data-done="1". With a seed the initial noise is reproducible: mulberry32
// uniforms turned into normals by Box-Muller, in the order noiseFromSeed writes them
// (tests/test_web_demo.py computes the same numbers in Python).
"use strict";

const MODEL = "models/mnist_sampler.onnx";
const CARD = "models/mnist_sampler.json";

function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function noiseFromSeed(seed, count) {
  const uniform = mulberry32(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u = Math.max(uniform(), 1e-12), v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

async function main() {
  const params = new URLSearchParams(location.search);
  const status = document.getElementById("status");
  const button = document.getElementById("draw");
  ort.env.wasm.wasmPaths = new URL("node_modules/onnxruntime-web/dist/", location.href).href;
  ort.env.wasm.numThreads = 1;  // a plain http.server is not cross-origin isolated
  const card = await (await fetch(CARD)).json();
  const session = await ort.InferenceSession.create(MODEL, { executionProviders: ["wasm"] });
  const [height, width, channels] = card.image_shape;
  let digit = Number(params.get("digit") ?? 0);

  const digits = document.getElementById("digits");
  card.class_names.forEach((name, k) => {
    const b = document.createElement("button");
    b.textContent = name;
    b.onclick = () => { digit = k; mark(); };
    digits.appendChild(b);
  });
  function mark() { [...digits.children].forEach((b, k) => b.classList.toggle("chosen", k === digit)); }
  if (params.has("guidance")) document.getElementById("guidance").value = params.get("guidance");
  if (params.has("seed")) document.getElementById("seed").value = params.get("seed");
  mark();

  async function draw() {
    button.disabled = true;
    const seedText = document.getElementById("seed").value;
    const seed = seedText === "" ? crypto.getRandomValues(new Uint32Array(1))[0] : Number(seedText);
    const guidance = Number(document.getElementById("guidance").value);
    status.textContent = `drawing a ${card.class_names[digit]} (seed ${seed})…`;
    const size = height * width * channels;
    const feeds = {
      noise: new ort.Tensor("float32", noiseFromSeed(seed, size), [1, height, width, channels]),
      labels: new ort.Tensor("int32", Int32Array.from([digit]), [1]),
      guidance_scale: new ort.Tensor("float32", Float32Array.from([guidance]), []),
    };
    const start = performance.now();
    const output = await session.run(feeds);
    const ms = performance.now() - start;
    const images = output.images.data;
    const canvas = document.getElementById("canvas");
    const context = canvas.getContext("2d");
    const picture = context.createImageData(width, height);
    const pixels = new Array(size);
    for (let i = 0; i < height * width; i++) {
      for (let c = 0; c < 3; c++) {
        const value = images[i * channels + (channels === 3 ? c : 0)];
        const byte = Math.min(255, Math.max(0, Math.round((value + 1) * 127.5)));
        picture.data[4 * i + c] = byte;
        if (c < channels) pixels[i * channels + c] = byte;
      }
      picture.data[4 * i + 3] = 255;
    }
    context.putImageData(picture, 0, 0);
    window.kgenResult = { digit, seed, guidance, ms, pixels };
    status.textContent = `a ${card.class_names[digit]}: ${card.sampler}-${card.num_steps}, guidance ${guidance}, ` +
      `seed ${seed}, drawn in ${ms.toFixed(0)} ms`;
    status.dataset.done = "1";
    button.disabled = false;
  }

  button.onclick = draw;
  button.disabled = false;
  status.textContent = `ready: ${card.sampler}-${card.num_steps} sampler, ${card.class_names.length} classes`;
  if (params.get("auto") === "1") await draw();
}

main().catch((error) => {
  const status = document.getElementById("status");
  status.textContent = `error: ${error.message ?? error}`;
  status.dataset.done = "error";
});
