"""The listening-test page: one self-contained HTML file (no external assets, works offline).

Kept as a Python string so it ships inside the package without package-data configuration.
Rules the page enforces, because they make ratings comparable:

* a clip must be played to its end before it can be rated (A/B: both clips);
* ratings use the 5-point absolute category scale of ITU-T P.800 (1 bad .. 5 excellent), for
  fidelity (audio quality: noise, distortion, artefacts) and musicality (is it convincing
  music?) separately;
* the rater is a random id kept in the browser's localStorage, so a returning rater continues
  their balanced schedule; no name or other personal data is asked for.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>waveloom listening test</title>
<style>
 body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto;
        padding: 0 1rem; color: #222; }
 h1 { font-size: 1.4rem; }
 nav button { margin-right: .5rem; }
 nav button[aria-pressed=true] { font-weight: bold; }
 section { border: 1px solid #ccc; border-radius: .5rem; padding: 1rem; margin: 1rem 0; }
 fieldset { border: 0; padding: 0; margin: .8rem 0; }
 legend { font-weight: bold; }
 .scale label { display: inline-block; margin-right: .8rem; }
 .hint { color: #666; font-size: .9rem; }
 button { font-size: 1rem; padding: .4rem .9rem; }
 #status { min-height: 1.5rem; color: #075; }
</style>
</head>
<body>
<h1>Listening test</h1>
<p class="hint">Clips are shown in random order without their source. Play each clip to the
end, then answer. Use headphones in a quiet room.</p>
<nav>
 <button id="mode-likert" type="button" aria-pressed="true">Rate clips (1-5)</button>
 <button id="mode-ab" type="button" aria-pressed="false" hidden>Compare two clips (A/B)</button>
</nav>

<section id="likert">
 <button id="play" type="button">Play</button>
 <audio id="clip" preload="auto"></audio>
 <span id="played" class="hint"></span>
 <fieldset class="scale" id="fidelity-set" disabled>
  <legend>Fidelity</legend>
  <div class="hint">Audio quality: noise, distortion, clicks, artefacts.</div>
 </fieldset>
 <fieldset class="scale" id="musicality-set" disabled>
  <legend>Musicality</legend>
  <div class="hint">Does it sound like a convincing musical note or phrase?</div>
 </fieldset>
 <button id="submit" type="button" disabled>Submit</button>
</section>

<section id="ab" hidden>
 <button id="play-a" type="button">Play A</button>
 <button id="play-b" type="button">Play B</button>
 <audio id="clip-a" preload="auto"></audio>
 <audio id="clip-b" preload="auto"></audio>
 <span id="played-ab" class="hint"></span>
 <fieldset id="choice-set" disabled>
  <legend>Which clip is better overall?</legend>
  <label><input type="radio" name="choice" id="choice-a" value="a"> A</label>
  <label><input type="radio" name="choice" id="choice-b" value="b"> B</label>
  <label><input type="radio" name="choice" id="choice-none" value="none"> No preference</label>
 </fieldset>
 <button id="submit-ab" type="button" disabled>Submit</button>
</section>

<p id="status" role="status"></p>
<p class="hint">Answers so far: <span id="count">0</span></p>

<script>
"use strict";
const LABELS = ["Bad", "Poor", "Fair", "Good", "Excellent"];
const $ = (id) => document.getElementById(id);
let rater = localStorage.getItem("waveloom-rater");
if (!rater) {
  rater = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
  localStorage.setItem("waveloom-rater", rater);
}
let mode = "likert";
let trial = null;
const heard = new Set();

for (const scale of ["fidelity", "musicality"]) {
  const set = $(scale + "-set");
  LABELS.forEach((text, i) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio"; input.name = scale; input.value = String(i + 1);
    input.id = scale + "-" + (i + 1);
    label.append(input, " " + (i + 1) + " " + text);
    set.append(label);
  });
}

function choice(name) {
  const el = document.querySelector('input[name="' + name + '"]:checked');
  return el ? el.value : null;
}

function update() {
  if (!trial) {
    for (const id of ["fidelity-set", "musicality-set", "choice-set"]) { $(id).disabled = true; }
    $("submit").disabled = true;
    $("submit-ab").disabled = true;
    return;
  }
  if (mode === "likert") {
    const ok = heard.has("clip");
    $("fidelity-set").disabled = !ok;
    $("musicality-set").disabled = !ok;
    $("played").textContent = ok ? "played" : "";
    $("submit").disabled = !(ok && choice("fidelity") && choice("musicality"));
  } else {
    const ok = heard.has("clip-a") && heard.has("clip-b");
    $("choice-set").disabled = !ok;
    $("played-ab").textContent = ok ? "both played" : "";
    $("submit-ab").disabled = !(ok && choice("choice"));
  }
}

let requests = 0;
async function next() {
  const mine = ++requests;
  heard.clear();
  trial = null;
  document.querySelectorAll("input[type=radio]").forEach((el) => { el.checked = false; });
  update();
  const response = await fetch("/api/trial?mode=" + mode + "&rater=" +
                               encodeURIComponent(rater));
  const data = await response.json();
  if (mine !== requests) { return; }  // superseded (e.g. the mode changed meanwhile)
  if (!response.ok) { $("status").textContent = data.error; return; }
  trial = data;
  document.body.dataset.trial = data.trial;
  document.body.dataset.mode = data.mode;
  $("count").textContent = data.answered;
  if (data.mode === "likert") {
    $("clip").src = data.audio[0];
  } else {
    $("clip-a").src = data.audio[0];
    $("clip-b").src = data.audio[1];
  }
  update();
}

function play(id) {
  for (const other of ["clip", "clip-a", "clip-b"]) {
    if (other !== id) { $(other).pause(); }
  }
  const audio = $(id);
  audio.currentTime = 0;
  audio.play().catch((err) => { $("status").textContent = "cannot play: " + err; });
}

for (const id of ["clip", "clip-a", "clip-b"]) {
  $(id).addEventListener("ended", () => { heard.add(id); update(); });
}
$("play").addEventListener("click", () => play("clip"));
$("play-a").addEventListener("click", () => play("clip-a"));
$("play-b").addEventListener("click", () => play("clip-b"));
document.addEventListener("change", update);

async function submit(body) {
  body.trial = trial.trial;
  body.rater = rater;
  const response = await fetch("/api/answer", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)
  });
  const data = await response.json();
  if (!response.ok) { $("status").textContent = "not saved: " + data.error; return; }
  $("status").textContent = "Saved.";
  $("count").textContent = data.answered;
  await next();
}
$("submit").addEventListener("click", () => submit({
  fidelity: Number(choice("fidelity")), musicality: Number(choice("musicality"))
}));
$("submit-ab").addEventListener("click", () => submit({choice: choice("choice")}));

function setMode(m) {
  mode = m;
  $("likert").hidden = m !== "likert";
  $("ab").hidden = m !== "ab";
  $("mode-likert").setAttribute("aria-pressed", String(m === "likert"));
  $("mode-ab").setAttribute("aria-pressed", String(m === "ab"));
  for (const id of ["clip", "clip-a", "clip-b"]) { $(id).pause(); }
  next();
}
$("mode-likert").addEventListener("click", () => setMode("likert"));
$("mode-ab").addEventListener("click", () => setMode("ab"));

fetch("/api/config").then((r) => r.json()).then((config) => {
  $("mode-ab").hidden = !config.modes.includes("ab");
  setMode("likert");
});
</script>
</body>
</html>
"""
