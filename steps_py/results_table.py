#!/usr/bin/env python3
"""Collect the WER of every system into RESULTS.md, with the protocol of a fair comparison: the
LM weight and insertion penalty are tuned on dev alone, and eval is scored once, at dev's
setting. Then matched-pair significance tests (sclite's MAPSSWE and a paired bootstrap over
utterances, hdnn/significance.py) for the comparisons the paper makes, parameter counts, a plot
of WER against parameters (wer_vs_params.png) and the nnets' training curves
(training_curves.png: cross-validation cross-entropy and frame accuracy per epoch)."""
import re
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging
from hdnn.errors import atomic_open
from hdnn.scoring import best_wer_line, wer_line_at

USAGE = """%(prog)s [options] <exp-root> <results-md>
 e.g.: %(prog)s --mics ihm,sdm1 exp RESULTS.md"""

SYSTEMS = ("tri", "teacher", "student_ce", "student_kd", "student_kd_sdmt", "dnn_small", "student_adapt_unsup",
           "student_adapt_teacher", "student_adapt_sup", "teacher_smbr", "student_smbr", "student_ts_smbr",
           "student_gate_smbr", "student_kd_smbrt")
SETS = ("dev", "eval")
# (A, B): B is expected to be better, or (teacher vs student) the gap the student should close.
COMPARISONS = (("teacher", "student_kd"), ("student_ce", "student_kd"), ("student_kd_sdmt", "student_kd"),
               ("student_ce", "student_kd_sdmt"), ("dnn_small", "student_ce"),
               ("tri", "teacher"), ("student_kd", "student_adapt_unsup"), ("student_kd", "student_adapt_teacher"),
               ("student_kd", "student_adapt_sup"), ("teacher", "teacher_smbr"), ("student_kd", "student_smbr"),
               ("student_kd", "student_ts_smbr"), ("student_kd", "student_gate_smbr"),
               ("student_kd", "student_kd_smbrt"))
ALPHA = 0.05
PROTOCOL = ("Each system's LM weight and insertion penalty are tuned on dev alone; eval is scored once, at that "
            "setting. Tuned on (last column): dev, the best of a sweep of dev; dev_tune, the best of a sweep of "
            "dev_tune, every Nth utterance of each dev speaker (--backend py, where each setting costs a search; "
            "run.sh --dev-tune-part N), dev then searched once at it; given, dev searched at one setting "
            "(the adapted systems: student_kd's).")
# KD students that also trained on N times as much untranscribed audio as transcribed (stage 7)
UNTRANSCRIBED_SYSTEM = re.compile(r"student_kd_u(\d+)x")


def systems_of(exp_root, mic):
    """SYSTEMS, with the untranscribed-audio KD students found in exp/<mic> after student_kd."""
    found = sorted((int(m[1]), m[0]) for d in (Path(exp_root) / mic).glob("student_kd_u*x")
                   if (m := UNTRANSCRIBED_SYSTEM.fullmatch(d.name)))
    i = SYSTEMS.index("student_kd") + 1
    return SYSTEMS[:i] + tuple(name for _, name in found) + SYSTEMS[i:]


def comparisons_of(systems):
    """COMPARISONS, and each untranscribed-audio student against the teacher (the gap left),
    student_kd and student_ce."""
    extra = tuple((a, b) for b in systems if UNTRANSCRIBED_SYSTEM.fullmatch(b)
                  for a in ("teacher", "student_kd", "student_ce"))
    return COMPARISONS[:4] + extra + COMPARISONS[4:]


def num_parameters(sys_dir):
    """Trainable parameters of an nnet (final.pt) or of a diagonal GMM (final.mdl)."""
    sys_dir = Path(sys_dir)
    if (sys_dir / "final.pt").is_file():
        from hdnn.nnet.models import load_model, num_parameters as nnet_params

        return nnet_params(load_model(sys_dir / "final.pt"))
    if (sys_dir / "final.mdl").is_file():
        from hdnn.kaldi.gmm_model import read_gmm_model

        _, am = read_gmm_model(sys_dir / "final.mdl")
        # per Gaussian: a weight, a mean and a variance vector
        return am.num_gauss * (2 * am.dim + 1)
    return None


def speaker_parameters(sys_dir):
    """Adapted parameters per speaker of an adapted system (<sys_dir>/spk/*.pt), or None."""
    files = sorted((Path(sys_dir) / "spk").glob("*.pt"))
    if not files:
        return None
    import torch

    blob = torch.load(files[0], map_location="cpu", weights_only=True)
    return sum(t.numel() for t in blob["params"].values())


def dev_setting(sys_dir):
    """(lmwt, wip) strings of the best dev setting of a system, or None when dev is not scored."""
    from hdnn.significance import dev_setting as setting

    return setting(sys_dir) if best_wer_line(Path(sys_dir) / "decode_dev") else None


def tuned_on(sys_dir):
    """Where a system's LM weight and penalty were chosen: "dev_tune" (the py backend's sweep of
    part of dev, then dev searched once at its setting), "dev" (a sweep of dev) or "given" (dev
    searched at one setting, e.g. the adapted systems at student_kd's)."""
    if best_wer_line(Path(sys_dir) / "decode_dev_tune"):
        return "dev_tune"
    return "dev" if len(list((Path(sys_dir) / "decode_dev").glob("wer_*"))) > 1 else "given"


def collect(exp_root, mics):
    """Rows (mic, system, params, {set: %WER line}, dev setting) for every system that has dev
    results: dev at its best setting (its only one where chosen elsewhere), eval at dev's."""
    rows = []
    for mic in mics:
        for system in systems_of(exp_root, mic):
            sys_dir = Path(exp_root) / mic / system
            setting = dev_setting(sys_dir)
            if setting is None:
                continue
            lines = {"dev": best_wer_line(sys_dir / "decode_dev"),
                     "eval": wer_line_at(sys_dir / "decode_eval", setting)}
            rows.append((mic, system, (num_parameters(sys_dir), speaker_parameters(sys_dir)), lines, setting,
                         tuned_on(sys_dir)))
    return rows


def significance(exp_root, rows):
    """Markdown rows of the paired tests of COMPARISONS on each mic and set, each system at its
    own dev-tuned setting."""
    from hdnn.significance import compare, read_decode

    settings = {(mic, system): setting for mic, system, _, _, setting, _ in rows}
    out = ["| mic | set | system A | system B | %WER A | %WER B | p (MAPSSWE) | P(B better) (bootstrap) | verdict |",
           "|---|---|---|---|---:|---:|---:|---:|---|"]
    for mic in dict.fromkeys(r[0] for r in rows):
        for s in SETS:
            for a, b in comparisons_of(systems_of(exp_root, mic)):
                if (mic, a) not in settings or (mic, b) not in settings:
                    continue
                dirs = [Path(exp_root) / mic / x / f"decode_{s}" for x in (a, b)]
                if not all((d / "scoring_kaldi" / "test_filt.txt").is_file() for d in dirs):
                    continue
                c = compare(*(read_decode(d, *settings[(mic, x)]) for d, x in zip(dirs, (a, b))), set_name=s)
                if c.mapsswe_p >= ALPHA:
                    verdict = "no significant difference"
                else:
                    verdict = f"{b if c.better == 'B' else a} better"
                out.append(f"| {mic} | {s} | {a} | {b} | {c.wer_a.wer:.2f} | {c.wer_b.wer:.2f} | "
                           f"{format_p(c.mapsswe_p)} | {1.0 - c.bootstrap_p:.3f} | {verdict} |")
    return "\n".join(out)


def format_p(p):
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def wer_of(line):
    return float(line.split()[1]) if line else None


def format_table(rows):
    out = ["| mic | system | parameters | dev %WER | eval %WER | LM weight, penalty (tuned on) |",
           "|---|---|---:|---:|---:|---|"]
    for mic, system, (params, per_spk), lines, setting, tuned in rows:
        cells = [f"{wer_of(lines[s]):.2f}" if lines[s] else "-" for s in SETS]
        p = f"{params / 1e6:.2f}M" if params else "-"
        if per_spk:
            p += f" (+{per_spk / 1e3:.1f}k per speaker)"
        out.append(f"| {mic} | {system} | {p} | {cells[0]} | {cells[1]} | {setting[0]}, {setting[1]} ({tuned}) |")
    return "\n".join(out)


def plot_wer_vs_params(rows, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for mic in sorted({r[0] for r in rows}):
        for s, marker in zip(SETS, "os"):
            pts = [(p, wer_of(l[s]), name) for m, name, (p, per_spk), l, *_ in rows
                   if m == mic and p and l[s] and not per_spk]
            if not pts:
                continue
            ax.scatter([p for p, _, _ in pts], [w for _, w, _ in pts], marker=marker, label=f"{mic} {s}")
            for p, w, name in pts:
                ax.annotate(name, (p, w), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("%WER")
    ax.set_title("WER vs model size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_png(fig, png, dpi=120)


def save_png(fig, png, dpi):
    """Write a matplotlib figure to `png` atomically and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_open(png, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    plt.close(fig)


def training_histories(exp_root, mics):
    """{"mic system": per-epoch history} of every nnet system with a training checkpoint."""
    import torch

    out = {}
    for mic in mics:
        for system in systems_of(exp_root, mic):
            ckpt = Path(exp_root) / mic / system / "checkpoint.pt"
            if ckpt.is_file():
                state = torch.load(ckpt, map_location="cpu", weights_only=False)
                out[f"{mic} {system}"] = [h for h in state.get("history", []) if "cv" in h]
    return out


def plot_training_curves(histories, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_xent, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for name, history in histories.items():
        epochs = [h["epoch"] for h in history]
        ax_xent.plot(epochs, [h["cv"].get("xent", h["cv"]["loss"]) for h in history], "o-", label=name, markersize=3)
        ax_acc.plot(epochs, [100 * h["cv"]["accuracy"] for h in history], "o-", label=name, markersize=3)
    ax_xent.set(xlabel="epoch", ylabel="cross-entropy per frame", title="CV cross-entropy")
    ax_acc.set(xlabel="epoch", ylabel="frame accuracy (%)", title="CV frame accuracy")
    for ax in (ax_xent, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_png(fig, png, dpi=100)


def untranscribed_curve(exp_root, rows):
    """{mic: [(hours of untranscribed audio, dev %WER, eval %WER, system)]} of student_kd (0 h) and
    the untranscribed-audio students, the hours from their training histories (frames trained on
    per epoch beyond student_kd's), and {mic: {system: (dev, eval)}} of teacher and student_ce."""
    import torch

    def train_frames(mic, system):
        ckpt = Path(exp_root) / mic / system / "checkpoint.pt"
        if not ckpt.is_file():
            return None
        history = torch.load(ckpt, map_location="cpu", weights_only=False)["history"]
        return next((h["train"]["frames"] for h in history if "train" in h), None)

    wers = {(mic, system): tuple(wer_of(lines[s]) for s in SETS) for mic, system, _, lines, *_ in rows}
    curve, refs = {}, {}
    for mic in dict.fromkeys(r[0] for r in rows):
        base = train_frames(mic, "student_kd")
        points = [(system, train_frames(mic, system)) for system in systems_of(exp_root, mic)
                  if UNTRANSCRIBED_SYSTEM.fullmatch(system) and (mic, system) in wers]
        if base is None or (mic, "student_kd") not in wers or not points:
            continue
        curve[mic] = [(0.0, *wers[mic, "student_kd"], "student_kd")] + [
            ((frames - base) / 100 / 3600, *wers[mic, system], system) for system, frames in points if frames]
        refs[mic] = {system: wers[mic, system] for system in ("teacher", "student_ce") if (mic, system) in wers}
    return curve, refs


def format_untranscribed(curve, refs):
    out = ["| mic | system | untranscribed audio (h) | dev %WER | eval %WER |", "|---|---|---:|---:|---:|"]
    for mic, points in curve.items():
        out += [f"| {mic} | {system} | {hours:.2f} | {dev:.2f} | {ev:.2f} |" for hours, dev, ev, system in points]
        out += [f"| {mic} | {system} (reference) | - | {dev:.2f} | {ev:.2f} |" for system, (dev, ev) in refs[mic].items()]
    return "\n".join(out)


def plot_untranscribed(curve, refs, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curve), figsize=(5 * len(curve), 3.6), squeeze=False)
    for ax, (mic, points) in zip(axes[0], curve.items()):
        hours = [h for h, *_ in points]
        for i, (s, marker) in enumerate(zip(SETS, "os")):
            ax.plot(hours, [p[1 + i] for p in points], marker=marker, label=f"student_kd {s}")
            for (system, wers), style in zip(refs[mic].items(), ("--", ":")):
                ax.axhline(wers[i], linestyle=style, color=f"C{i}", alpha=0.6, label=f"{system} {s}")
        ax.set(xlabel="untranscribed audio labelled by the teacher (h)", ylabel="%WER", title=mic)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_png(fig, png, dpi=100)


def adaptation_curves(exp_root, mics):
    """{(mic, set): {update: {seconds: %WER}}} of stage 9's data-amount curve (update "none":
    the unadapted student), from exp/<mic>/student_adapt_curve/<set>_<update>_<seconds>."""
    import re

    out = {}
    for mic in mics:
        setting = dev_setting(Path(exp_root) / mic / "student_kd")
        for d in sorted((Path(exp_root) / mic / "student_adapt_curve").glob("*_*_*")):
            m = re.fullmatch(r"(\w+?)_(none|gates|lhuc|all)_(\d+)", d.name)
            line = wer_line_at(d / "decode_test", setting) if m and setting else None
            if line:
                out.setdefault((mic, m[1]), {}).setdefault(m[2], {})[int(m[3])] = wer_of(line)
    return out


def format_curves(curves):
    seconds = sorted({n for c in curves.values() for u in c.values() for n in u if n}) + [0]
    head = " | ".join(f"{n} s" if n else "the whole first half" for n in seconds)
    out = [f"| mic | set | update | unadapted | {head} |", "|---|---|---|---:|" + "---:|" * len(seconds)]
    for (mic, s), c in sorted(curves.items()):
        base = c.get("none", {}).get(0)
        for update in ("gates", "lhuc", "all"):
            if update in c:
                cells = [f"{c[update][n]:.2f}" if n in c[update] else "-" for n in seconds]
                out.append(f"| {mic} | {s} | {update} | {base if base is None else f'{base:.2f}'} | "
                           + " | ".join(cells) + " |")
    return "\n".join(out)


def plot_curves(curves, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), squeeze=False)
    for ax, ((mic, s), c) in zip(axes[0], sorted(curves.items())):
        seconds = sorted({n for u in c.values() for n in u if n})
        x_all = (seconds[-1] * 2) if seconds else 1
        for update, marker in zip(("gates", "lhuc", "all"), "os^"):
            if update in c:
                pts = sorted((n or x_all, w) for n, w in c[update].items())
                ax.plot([p for p, _ in pts], [w for _, w in pts], marker=marker, label=update)
        if "none" in c:
            ax.axhline(c["none"][0], color="grey", linestyle="--", label="unadapted")
        ax.set_xscale("log")
        ax.set_xticks(seconds + [x_all], [f"{n}" for n in seconds] + ["half"])
        ax.set(xlabel="adaptation data per speaker (s)", ylabel="%WER", title=f"{mic} {s}: second halves")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_png(fig, png, dpi=100)


def main(argv=None):
    p = get_parser(__doc__, USAGE)
    p.add_argument("--mics", default="ihm,sdm1", help="comma-separated mic conditions to collect")
    p.add_argument("--command", default="", help="the command that made the results, recorded in the file")
    p.add_argument("--run-info", default="",
                   help="what else to record about the run (commit, date, wall time), one line")
    p.add_argument("exp_root")
    p.add_argument("results_md")
    args = p.parse_args(argv)
    setup_logging()
    rows = collect(args.exp_root, args.mics.split(","))
    png = Path(args.results_md).with_name("wer_vs_params.png")
    parts = ["# Results", ""]
    if args.command:
        parts += ["Made by:", "", f"    {args.command}", ""]
    if args.run_info:
        parts += [args.run_info, ""]
    parts += [PROTOCOL, "", format_table(rows), "",
              f"Matched-pair tests on the same utterances (a difference is called a gain only at p < {ALPHA}): "
              "p of NIST's MAPSSWE test (sclite's sc_stats, two-sided), which gives the verdict, and "
              "the paired bootstrap's probability of improvement (Bisani & Ney 2004: the share of "
              "10,000 resampled test sets on which B makes fewer errors than A).", "",
              significance(args.exp_root, rows), "",
              "The %WER lines (dev and eval at the setting of the table):", "", "```"]
    parts += [l for _, _, _, lines, *_ in rows for l in lines.values() if l]
    parts += ["```", ""]
    per_set = [best_wer_line(Path(args.exp_root) / mic / system / "decode_eval") for mic, system, *_ in rows]
    if any(per_set):
        parts += ["Eval at its own best setting, for reference only (tuned on the test set itself; "
                  "where eval was decoded at dev's setting alone, this is the same line):", "", "```"]
        parts += [l for l in per_set if l] + ["```", ""]
    if rows:
        plot_wer_vs_params(rows, png)
        parts += [f"![WER vs parameters]({png.name})", ""]
    histories = training_histories(args.exp_root, args.mics.split(","))
    if histories:
        curves = png.with_name("training_curves.png")
        plot_training_curves(histories, curves)
        parts += [f"![Training curves]({curves.name})", ""]
    curve, refs = untranscribed_curve(args.exp_root, rows)
    if curve:
        png_untranscribed = png.with_name("untranscribed_curve.png")
        plot_untranscribed(curve, refs, png_untranscribed)
        parts += ["Distillation with untranscribed audio (stage 7): student_kd_u<N>x is student_kd trained "
                  "also on N times as much untranscribed audio of the training speakers, labelled by the teacher "
                  "alone (its frames cost the soft-target term only); hours from the frames each student trained "
                  "on per epoch:", "", format_untranscribed(curve, refs), "",
                  f"![Untranscribed audio]({png_untranscribed.name})", ""]
    curves = adaptation_curves(args.exp_root, args.mics.split(","))
    if curves:
        png_curve = png.with_name("adaptation_curve.png")
        plot_curves(curves, png_curve)
        parts += ["Speaker adaptation against the amount of data (stage 9): each speaker's utterances in "
                  "two halves; student_kd adapted (first-pass targets) on the first N seconds of the first "
                  "half, %WER on the second halves at student_kd's dev setting:", "", format_curves(curves), "",
                  f"![Adaptation curve]({png_curve.name})", ""]
    with atomic_open(args.results_md) as f:
        f.write("\n".join(parts))


if __name__ == "__main__":
    run_main(main)
