// kgen web demo: a sampler graph (kgen.export --sampler) run by onnxruntime-web.
//
// Two models: MNIST (the 25-step DDIM sampler of the shipped denoiser) and CIFAR-10 (the 4-step
// sampler of the distilled student, exported/cifar10_sampler_fast.onnx).
// Query parameters (the test uses them): ?model=cifar10&class=3&seed=7&guidance=2&auto=1 draws at once
// (`digit` is accepted for `class`); the result is left in
// window.kgenResult = {model, label, seed, guidance, ms, pixels} and
// #status gets data-done="1". With a seed the initial noise is reproducible: mulberry32
// uniforms turned into normals by Box-Muller, in the order noiseFromSeed writes them
// (tests/test_web_demo.py computes the same numbers in Python).
"use strict";

const MODELS = {
  mnist: { file: "models/mnist_sampler", title: "a label", guidance: 2 },
  cifar10: { file: "models/cifar10_sampler_fast", title: "a CIFAR-10 image", guidance: 3 },
};

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

function article(name) {
  return `${/^[aeiou]/i.test(name) ? "an" : "a"} ${name}`;
}

async function main() {
  const params = new URLSearchParams(location.search);
  const status = document.getElementById("status");
  const button = document.getElementById("draw");
  ort.env.wasm.wasmPaths = new URL("node_modules/onnxruntime-web/dist/", location.href).href;
  ort.env.wasm.numThreads = 1;  // a plain http.server is not cross-origin isolated
  const name = params.get("model") ?? "mnist";
  const model = MODELS[name];
  if (model === undefined) throw new Error(`unknown model "${name}"; choose one of ${Object.keys(MODELS).join(", ")}`);
  const chooser = document.getElementById("model");
  chooser.value = name;
  chooser.onchange = () => { location.search = `?model=${chooser.value}`; };
  document.getElementById("title").textContent = `${model.title[0].toUpperCase()}${model.title.slice(1)}, drawn by diffusion in your browser`;
  document.getElementById("guidance").value = model.guidance;
  const card = await (await fetch(`${model.file}.json`)).json();
  const session = await ort.InferenceSession.create(`${model.file}.onnx`, { executionProviders: ["wasm"] });
  const [height, width, channels] = card.image_shape;
  const canvas = document.getElementById("canvas");
  canvas.width = width;
  canvas.height = height;
  let label = Number(params.get("class") ?? params.get("digit") ?? 0);
  if (!Number.isInteger(label) || label < 0 || label >= card.class_names.length) {
    throw new Error(`class must be 0..${card.class_names.length - 1}; got ${params.get("class") ?? params.get("digit")}`);
  }

  const classes = document.getElementById("classes");
  card.class_names.forEach((name, k) => {
    const b = document.createElement("button");
    b.textContent = name;
    b.onclick = () => { label = k; mark(); };
    classes.appendChild(b);
  });
  function mark() { [...classes.children].forEach((b, k) => b.classList.toggle("chosen", k === label)); }
  if (params.has("guidance")) document.getElementById("guidance").value = params.get("guidance");
  if (params.has("seed")) document.getElementById("seed").value = params.get("seed");
  mark();

  async function draw() {
    button.disabled = true;
    const seedText = document.getElementById("seed").value;
    const seed = seedText === "" ? crypto.getRandomValues(new Uint32Array(1))[0] : Number(seedText);
    const guidance = Number(document.getElementById("guidance").value);
    status.textContent = `drawing ${article(card.class_names[label])} (seed ${seed})…`;
    const size = height * width * channels;
    const feeds = {
      noise: new ort.Tensor("float32", noiseFromSeed(seed, size), [1, height, width, channels]),
      labels: new ort.Tensor("int32", Int32Array.from([label]), [1]),
      guidance_scale: new ort.Tensor("float32", Float32Array.from([guidance]), []),
    };
    const start = performance.now();
    const output = await session.run(feeds);
    const ms = performance.now() - start;
    const images = output.images.data;
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
    window.kgenResult = { model: name, label: label, seed, guidance, ms, pixels };
    status.textContent = `${article(card.class_names[label])}: ${card.sampler}-${card.num_steps}, guidance ${guidance}, ` +
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
