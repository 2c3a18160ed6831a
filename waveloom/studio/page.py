"""The studio's page: one HTML document, no external resources (works offline).

Five panels. Generate, Compose, Transfer and Interpolate each queue a job (``POST /api/jobs``)
and poll it, showing its stage and a progress bar, with a Cancel button. Library lists every
job's results with playback, the spectrogram, a download link and a 1-5 rating stored in the
listening store. Element ids are stable: the browser test drives them.
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>waveloom studio</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1000px;margin:1em auto;padding:0 1em}
nav button{padding:.4em 1em;margin-right:.3em}
nav button.on{font-weight:bold;border-bottom:3px solid #357}
section{display:none;margin-top:1em}section.on{display:block}
label{display:inline-block;margin:.3em 1em .3em 0}
input[type=number]{width:6em}
.job{border:1px solid #ccc;border-radius:6px;padding:.6em;margin:.6em 0}
.bar{height:8px;background:#eee;border-radius:4px;overflow:hidden;margin:.3em 0}
.bar div{height:100%;background:#357;width:0}
.error{color:#a00}.muted{color:#666;font-size:.9em}
img{max-width:100%;display:block;margin-top:.3em}
</style></head><body>
<h1>waveloom studio</h1>
<nav id="tabs"></nav>
<section id="panel-generate">
 <p class="muted">Notes from a generative model: WaveNet, SampleRNN, the GANs, the codec LM,
 diffusion, WaveGlow.</p>
 <label>model <select id="gen-model"></select></label>
 <label>instrument <select id="gen-instrument"></select></label>
 <label>pitch <input id="gen-pitch" type="number" min="0" max="127" value="60"></label>
 <label>seconds <input id="gen-seconds" type="number" min="0.05" max="60" step="0.5" value="2"></label>
 <label>seed <input id="gen-seed" type="number" min="0" value="0"></label>
 <label>temperature <input id="gen-temperature" type="number" min="0.01" max="10" step="0.1" placeholder="model's"></label>
 <label>steps <input id="gen-steps" type="number" min="1" max="1000" placeholder="model's"></label>
 <label>cfg <input id="gen-cfg" type="number" min="0" max="20" step="0.5" placeholder="none"></label>
 <br><button id="generate">Generate</button>
 <div id="gen-jobs"></div>
</section>
<section id="panel-compose">
 <p class="muted">A new piece: the Music Transformer writes the notes, DDSP instruments play each voice.</p>
 <label>model <select id="comp-model"></select></label>
 <label>seconds <input id="comp-seconds" type="number" min="1" max="60" value="20"></label>
 <label>seed <input id="comp-seed" type="number" min="0" value="0"></label>
 <label>temperature <input id="comp-temperature" type="number" min="0.01" max="10" step="0.1" value="1"></label>
 <br><button id="compose">Compose</button>
 <div id="comp-jobs"></div>
</section>
<section id="panel-transfer">
 <p class="muted">A monophonic recording's pitch and loudness, played by a DDSP instrument, or
 the recording translated into a translator's domain.</p>
 <label>sound <input id="tr-file" type="file" accept="audio/*"></label>
 <label>instrument <select id="tr-model"></select></label>
 <label id="tr-domain-label">domain <select id="tr-domain"></select></label>
 <label>pitch shift (semitones) <input id="tr-shift" type="number" min="-24" max="24" value="0"></label>
 <br><button id="transfer">Transfer</button>
 <div id="tr-jobs"></div>
</section>
<section id="panel-interpolate">
 <p class="muted">Mix two sounds' codes in an autoencoder; the slider picks the step to hear.</p>
 <label>sound A <input id="ip-a" type="file" accept="audio/*"></label>
 <label>sound B <input id="ip-b" type="file" accept="audio/*"></label>
 <label>model <select id="ip-model"></select></label>
 <label>steps <input id="ip-steps" type="number" min="2" max="11" value="5"></label>
 <label>pitch <input id="ip-pitch" type="number" min="0" max="127" placeholder="auto"></label>
 <br><button id="interpolate">Interpolate</button>
 <div id="ip-jobs"></div>
</section>
<section id="panel-library"><div id="library"></div></section>
<script>
const PANELS = ["generate", "compose", "transfer", "interpolate", "library"];
let MODELS = [];
const $ = (id) => document.getElementById(id);
function show(name) {
  for (const p of PANELS) {
    $("panel-" + p).classList.toggle("on", p === name);
    $("tab-" + p).classList.toggle("on", p === name);
  }
  if (name === "library") library();
}
for (const p of PANELS) {
  const b = document.createElement("button");
  b.id = "tab-" + p; b.textContent = p[0].toUpperCase() + p.slice(1);
  b.onclick = () => show(p); $("tabs").appendChild(b);
}
function fill(select, panel) {
  select.innerHTML = "";
  for (const m of MODELS.filter((m) => m.panel === panel)) {
    const o = document.createElement("option");
    o.value = m.name; o.textContent = m.name + (m.headline ? " (" + m.headline + ")" : "");
    select.appendChild(o);
  }
}
function instruments() {
  const m = MODELS.find((m) => m.name === $("gen-model").value);
  const s = $("gen-instrument"); s.innerHTML = "";
  const none = document.createElement("option"); none.value = ""; none.textContent = "(default)";
  s.appendChild(none);
  for (const name of (m ? m.instruments : [])) {
    const o = document.createElement("option"); o.value = name; o.textContent = name;
    s.appendChild(o);
  }
}
async function models() {
  MODELS = (await (await fetch("/api/models")).json()).models;
  fill($("gen-model"), "generate"); fill($("comp-model"), "compose");
  fill($("tr-model"), "transfer"); fill($("ip-model"), "interpolate");
  instruments(); domains(); document.body.dataset.ready = "1";
}
$("gen-model").onchange = instruments;
function domains() {
  const m = MODELS.find((m) => m.name === $("tr-model").value);
  const translator = m && m.family === "translator";
  $("tr-domain-label").style.display = translator ? "" : "none";
  $("tr-domain").innerHTML = "";
  for (const name of (translator ? m.instruments : [])) {
    const o = document.createElement("option"); o.value = name; o.textContent = name;
    $("tr-domain").appendChild(o);
  }
}
$("tr-model").onchange = domains;
const num = (id) => ($(id).value === "" ? null : Number($(id).value));
async function upload(input) {
  const file = input.files[0];
  if (!file) throw new Error("choose a sound file first");
  const r = await fetch("/api/upload", {method: "POST", body: file,
    headers: {"X-Filename": encodeURIComponent(file.name)}});
  const body = await r.json();
  if (!r.ok) throw new Error(body.error);
  return body.name;
}
function results(job, box) {
  box.innerHTML = "";
  const wavs = job.files.filter((f) => f.endsWith(".wav"));
  for (const f of job.files) {
    if (f.endsWith(".wav")) {
      const a = document.createElement("audio"); a.controls = true; a.src = f;
      a.className = "result"; box.appendChild(a);
      const d = document.createElement("a"); d.href = f; d.download = ""; d.textContent = " download";
      box.appendChild(d);
    } else if (f.endsWith(".png")) {
      const i = document.createElement("img"); i.src = f; box.appendChild(i);
    } else {
      const d = document.createElement("a"); d.href = f; d.download = "";
      d.textContent = f.split("/").pop(); box.appendChild(d);
    }
  }
  if (job.kind === "interpolate" && wavs.length > 1) {
    const s = document.createElement("input"); s.type = "range"; s.min = 0;
    s.max = wavs.length - 1; s.value = 0; s.className = "slider";
    const players = box.querySelectorAll("audio");
    players.forEach((p, i) => { p.style.display = i ? "none" : ""; });
    s.oninput = () => players.forEach((p, i) => { p.style.display = i == s.value ? "" : "none"; });
    box.prepend(s);
  }
}
async function run(kind, params, target) {
  const box = document.createElement("div"); box.className = "job";
  box.innerHTML = "<b>" + kind + "</b> <span class='stage'>queued</span>" +
    "<div class='bar'><div></div></div><button class='cancel'>Cancel</button><div class='out'></div>";
  $(target).prepend(box);
  let r;
  try {
    r = await fetch("/api/jobs", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({kind: kind, ...params})});
  } catch (e) { box.querySelector(".stage").textContent = String(e); return; }
  const body = await r.json();
  if (!r.ok) { box.querySelector(".stage").textContent = body.error; box.classList.add("error"); return; }
  const id = body.job.id; box.id = "job-" + id;
  box.querySelector(".cancel").onclick = () => fetch("/api/jobs/" + id + "/cancel", {method: "POST"});
  for (;;) {
    const job = (await (await fetch("/api/jobs/" + id)).json()).job;
    box.dataset.status = job.status;
    box.querySelector(".bar div").style.width = (100 * job.progress) + "%";
    box.querySelector(".stage").textContent = job.status + (job.stage ? ": " + job.stage : "") +
      (job.error ? " - " + job.error : "");
    if (["done", "failed", "cancelled"].includes(job.status)) {
      box.querySelector(".cancel").remove();
      if (job.status === "done") results(job, box.querySelector(".out"));
      else box.classList.add("error");
      return;
    }
    await new Promise((ok) => setTimeout(ok, 300));
  }
}
$("generate").onclick = () => run("generate", {model: $("gen-model").value,
  instrument: $("gen-instrument").value || null, pitch: num("gen-pitch"),
  seconds: num("gen-seconds"), seed: num("gen-seed"), temperature: num("gen-temperature"),
  steps: num("gen-steps"), cfg: num("gen-cfg")}, "gen-jobs");
$("compose").onclick = () => run("compose", {model: $("comp-model").value,
  seconds: num("comp-seconds"), seed: num("comp-seed"), temperature: num("comp-temperature")},
  "comp-jobs");
$("transfer").onclick = async () => {
  try {
    const audio = await upload($("tr-file"));
    run("transfer", {model: $("tr-model").value, audio: audio, pitch_shift: num("tr-shift"),
      domain: $("tr-domain").value || null}, "tr-jobs");
  } catch (e) { $("tr-jobs").prepend(Object.assign(document.createElement("p"), {className: "error", textContent: e.message})); }
};
$("interpolate").onclick = async () => {
  try {
    const a = await upload($("ip-a")), b = await upload($("ip-b"));
    run("interpolate", {model: $("ip-model").value, a: a, b: b, steps: num("ip-steps"),
      pitch: num("ip-pitch")}, "ip-jobs");
  } catch (e) { $("ip-jobs").prepend(Object.assign(document.createElement("p"), {className: "error", textContent: e.message})); }
};
function rater() {
  let id = localStorage.getItem("waveloom-rater");
  if (!id) { id = "r" + Math.random().toString(36).slice(2, 10); localStorage.setItem("waveloom-rater", id); }
  return id;
}
async function rate(file, select) {
  const v = Number(select.value);
  await fetch("/api/rate", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({file: file, rater: rater(), fidelity: v, musicality: v})});
  select.disabled = true;
}
async function library() {
  const jobs = (await (await fetch("/api/jobs")).json()).jobs.filter((j) => j.status === "done");
  const lib = $("library"); lib.innerHTML = jobs.length ? "" : "<p class='muted'>No results yet.</p>";
  for (const job of jobs) {
    const box = document.createElement("div"); box.className = "job";
    box.innerHTML = "<b>" + job.kind + "</b> " + job.params.model +
      " <span class='muted'>" + job.seconds + " s</span><div class='out'></div>";
    results(job, box.querySelector(".out"));
    for (const f of job.files.filter((f) => f.endsWith(".wav"))) {
      const s = document.createElement("select");
      s.innerHTML = "<option value=''>rate 1-5</option>" + [1, 2, 3, 4, 5].map((v) => "<option>" + v + "</option>").join("");
      s.onchange = () => rate(f, s); box.appendChild(s);
    }
    lib.appendChild(box);
  }
}
show("generate"); models();
</script></body></html>
"""
