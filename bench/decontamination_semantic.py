"""Semantic decontamination: cost per record, cold cost, and quality on the corpus.

    .venv/bin/python bench/decontamination_semantic.py [--records 10000] [--quality]

Speed, with a baseline in the same process:

- the raw append path (``Recorder.emit`` with verification and screening off, as
  ``bench/emit.py`` measures it) per record, for the same unrelated records;
- the prefilter + screen per *unrelated* record (functions cut from the standard
  library, with their docstrings as tasks), one record at a time and in one batch, and
  the throughput ratio append / (append + screen): the goal is >= 0.5;
- a ``check``-sized batch (``--records``) screened twice (cold, then warm cache);
- the cold cost: loading the items and building the index, loading the embedding model
  and embedding the items (with and without the embedding cache);
- the cost per record that *hits* the shortlist: the corpus leaks, with the functional
  cache cold and warm, and a sweep of every item per record.

``--wired`` prints recall and false positives per stage through the one decontamination
API (``contaminated``), with the gate's and the dataset build's settings.
``--quality`` also prints, for the corpus under ``tests/corpus/contamination``, the
recall per stage and variant kind, the false positives on the clean set, and the recall /
false-positive curve of each text threshold (how the defaults were chosen).
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import sysconfig
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from contamination_corpus import (  # noqa: E402
    KINDS,
    Hit,
    as_record,
    caught,
    clean,
    flagged,
    leaks,
    recall_by_kind,
)

from convergent.config import default_config  # noqa: E402
from convergent.decontamination_semantic import (  # noqa: E402
    FUNCTIONAL,
    TEXT,
    Finding,
    FunctionalCheck,
    Screen,
    SemanticIndex,
    Settings,
    embedding,
)
from convergent.decontamination_semantic.items import (  # noqa: E402
    holdout_tasks,
    humaneval_tasks,
)


def stdlib_records(count: int) -> list[dict[str, Any]]:
    """Up to ``count`` distinct experiences made of standard-library functions and methods:
    real code that is no benchmark item (mostly: the bench reports the ones refused)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo"}
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.py")):
        if skip & set(path.relative_to(root).parts):
            continue
        source = path.read_text("utf-8", errors="replace")
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            code = textwrap.dedent(ast.get_source_segment(source, node) or "")
            if not 80 <= len(code) <= 2000 or code in out:
                continue
            doc = (ast.get_docstring(node) or node.name.replace("_", " ")).splitlines()[0]
            out[code] = {"kind": "experience", "claim": f"{path.stem}.{node.name} works",
                         "task": f"Write {node.name}: {doc}", "response": code,
                         "evidence": {"type": "execution", "language": "python",
                                      "tests": f"assert callable({node.name})\n"},
                         "confidence": 0.9,
                         "source": {"emitter": "bench", "model": "none", "origin": "self"}}
            if len(out) == count:
                return list(out.values())
    return list(out.values())


def per_record_us(fn: Callable[[], object], count: int) -> float:
    began = time.perf_counter()
    fn()
    return (time.perf_counter() - began) / count * 1e6


def append_path_us(records: Sequence[dict[str, Any]]) -> float:
    """``Recorder.emit`` per record with verification and screening off (bench/emit.py's
    append path), in a fresh records repo."""
    from convergent.recorder import Recorder
    from convergent.repo import init_repo

    for var, value in (("GIT_AUTHOR_NAME", "bench"), ("GIT_AUTHOR_EMAIL", "b@example.com"),
                       ("GIT_COMMITTER_NAME", "bench"), ("GIT_COMMITTER_EMAIL", "b@example.com")):
        os.environ.setdefault(var, value)
    with tempfile.TemporaryDirectory() as tmp:
        root = init_repo(Path(tmp) / "records", install_hooks=False)
        with Recorder(root, verify=False, screen=False) as rec:
            return per_record_us(lambda: [rec.emit(r) for r in records], len(records))


def wired_us(records: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """What emit's screening (:func:`convergent.screening.screen_batch`, the one
    decontamination API and the secrets rule) costs a record, one per call and in one
    batch, in a fresh records repo with the embedding model off."""
    from convergent.config import load_config
    from convergent.repo import init_repo
    from convergent.screening import screen_batch

    with tempfile.TemporaryDirectory() as tmp:
        root = init_repo(Path(tmp) / "records", install_hooks=False)
        config = load_config(root)
        config["decontamination"]["embeddings"] = "off"
        screen_batch(root, config, records[:1])  # imports, index and detect-secrets setup
        one = per_record_us(lambda: [screen_batch(root, config, [r]) for r in records],
                            len(records))
        batch = per_record_us(lambda: screen_batch(root, config, records), len(records))
    return one, batch


def speed(args: argparse.Namespace, index: SemanticIndex, cache: Path) -> None:
    settings = replace(DEFAULTS, embeddings="off")
    mix = stdlib_records(3000)
    probe = Screen.create(index, settings, None)
    quiet = [r for r in mix if not probe.prefilter(r)]
    append_us = append_path_us(quiet[:2000])
    screen = Screen.create(index, settings, FunctionalCheck(cache / "runs"))
    one_us = per_record_us(lambda: [screen.screen([r]) for r in quiet], len(quiet))
    batch_us = per_record_us(lambda: screen.screen(quiet), len(quiet))
    print(f"records that resemble nothing ({len(quiet)} of {len(mix)} standard-library "
          f"functions stop at the prefilter; the other {len(mix) - len(quiet)} "
          f"({1 - len(quiet) / len(mix):.1%}) reach the shortlist):")
    print(f"  baseline: raw append path (Recorder.emit, no verify/screen) {append_us:8.1f} us"
          " a record")
    for label, us in (("one record per call", one_us), ("one batch", batch_us)):
        print(f"  semantic screen, {label:20s}                {us:8.1f} us  ratio "
              f"append/(append+screen) {append_us / (append_us + us):.2f} (goal >= 0.5)")
    wired_one, wired_batch = wired_us(quiet[:2000])
    for label, us in (("one record per call", wired_one), ("one batch", wired_batch)):
        print(f"  emit's screening (screen_batch: n-gram + text + functional + secrets), "
              f"{label}: {us:8.1f} us  ratio {append_us / (append_us + us):.2f}")
    print(f"  load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (figures scale with it)")

    big = [mix[i % len(mix)] for i in range(args.records)]
    for label in ("cold", "warm"):
        check = FunctionalCheck(cache / "check")
        fresh = Screen.create(index, settings, check, workers=2)
        began = time.perf_counter()
        found = fresh.screen(big)
        took = time.perf_counter() - began
        per_us = took / len(big) * 1e6
        print(f"a check-sized batch: {len(big)} standard-library records ({len(mix)} "
              f"distinct, repeated), {label} functional cache: {took:6.2f} s ({per_us:.0f}"
              f" us a record; {fresh.shortlisted} shortlisted, {check.runs} sandbox runs, "
              f"{len({f.record for f in found})} refused)")
    refused = Screen.create(index, settings, FunctionalCheck(cache / "check")).screen(mix)
    print(f"  refused, of the {len(mix)} distinct: {len({f.record for f in refused})}")
    for f in refused:
        print(f"    {mix[f.record]['claim']}: {f.message}")


def cold(index_items: Callable[[], list[Any]]) -> SemanticIndex:
    began = time.perf_counter()
    items = index_items()
    loaded = time.perf_counter() - began
    began = time.perf_counter()
    index = SemanticIndex.build(items)
    built = time.perf_counter() - began
    print(f"cold cost: load {len(items)} items {loaded * 1e3:.0f} ms, build the index "
          f"{built * 1e3:.0f} ms")
    if embedding.available():
        began = time.perf_counter()
        embedding.embed([f"warm up {time.time_ns()}"])  # a text no cache has: the model
        model = time.perf_counter() - began
        began = time.perf_counter()
        index.embeddings()
        first = time.perf_counter() - began
        began = time.perf_counter()
        embedding.embed_cached(index.prompt_texts)
        again = time.perf_counter() - began
        print(f"  embedding model load {model:.1f} s; item embeddings {first * 1e3:.0f} ms "
              f"(uncached), {again * 1e3:.1f} ms (from the cache)")
    else:
        print("  embedding model not installed: the text stage is lexical only")
    return index


def hitting(index: SemanticIndex, cache: Path) -> None:
    records = [as_record(e) for e in leaks()]
    for mode in ("shortlist", "sweep"):
        check = FunctionalCheck(cache / f"hit-{mode}")
        for label in ("cold", "warm"):
            settings = replace(DEFAULTS, embeddings="off", functional=mode)
            screen = Screen.create(index, settings, check)
            runs = check.runs
            began = time.perf_counter()
            screen.screen(records)
            took = time.perf_counter() - began
            print(f"records that hit ({len(records)} corpus leaks), functional = {mode!r}, "
                  f"{label} cache: {took / len(records) * 1e3:7.1f} ms a record "
                  f"({check.runs - runs} sandbox runs)")
    if embedding.available():
        screen = Screen.create(index, replace(DEFAULTS, embeddings="auto", functional="off"), None)
        began = time.perf_counter()
        screen.screen(records)
        took = time.perf_counter() - began
        print(f"  text stage with embeddings (batch of {len(records)}): "
              f"{took / len(records) * 1e3:.1f} ms a record")


# --- quality ---------------------------------------------------------------------------


def hits_of(findings: Sequence[Finding], stage: str) -> list[Hit]:
    return [Hit(f.record, f.benchmark, f.item_id, f.score) for f in findings
            if f.stage == stage and (stage != FUNCTIONAL or "passes the tests" in f.message)]


def ngram_hits(records: Sequence[dict[str, Any]]) -> list[Hit]:
    """The n-gram stage alone, as the one decontamination API runs it."""
    from convergent.contamination import ngram_findings, ngram_index

    index = ngram_index(ROOT, default_config())
    return [Hit(f.record, f.benchmark, f.item_id) for f in ngram_findings(index, records)]


def show(label: str, leak_hit: Sequence[bool], clean_flags: Sequence[bool]) -> None:
    kinds = recall_by_kind(LEAKS, leak_hit)
    per = "  ".join(f"{k} {a}/{b}" for k, (a, b) in kinds.items())
    print(f"  {label:32s} recall {sum(leak_hit):3d}/{len(leak_hit)}  [{per}]  "
          f"clean FP {sum(clean_flags)}/{len(clean_flags)}")


LEAKS = leaks()
DEFAULTS = Settings()
CLEAN = clean()


def quality(index: SemanticIndex, cache: Path) -> None:
    leak_records = [as_record(e) for e in LEAKS]
    clean_records = [as_record(e) for e in CLEAN]
    text_only = [as_record(e, text_only=True) for e in CLEAN]
    print(f"quality on the corpus: {len(LEAKS)} leaks ({len({e['item'] for e in LEAKS})} "
          f"items), {len(CLEAN)} clean; recall = refused naming the leaked item")
    ng_leak, ng_clean = ngram_hits(leak_records), ngram_hits(clean_records)
    show("13-gram (today's gate)", caught(LEAKS, ng_leak), flagged(len(CLEAN), ng_clean))
    check = FunctionalCheck(cache / "quality")
    off = float("inf")
    envs = [("lexical only", replace(DEFAULTS, embeddings="off"))]
    if embedding.available():
        envs.append(("with embeddings", replace(DEFAULTS, embeddings="auto")))
    for name, base in envs:
        text_alone = replace(base, functional="off")
        thresholds = (f"lexical >= {base.lexical_threshold} / prose "
                      f"{base.lexical_threshold_prose}")
        if base.embeddings != "off":
            thresholds += (f", embedding >= {base.semantic_threshold} / prose "
                           f"{base.semantic_threshold_prose}")
        print(f" {name} ({thresholds}; shortlist {base.shortlist}, floor {base.floor}):")
        measure("text stage alone", index, text_alone, check, leak_records, clean_records,
                TEXT)
        for mode in ("shortlist", "sweep"):
            functional_alone = replace(base, functional=mode, semantic_threshold=off,
                                       semantic_threshold_prose=off, lexical_threshold=off,
                                       lexical_threshold_prose=off)
            measure(f"functional alone ({mode})", index, functional_alone, check,
                    leak_records, clean_records, FUNCTIONAL)
            measure(f"text + functional ({mode})", index, replace(base, functional=mode), check,
                    leak_records, clean_records, None, ng_leak, ng_clean)
        curve(name, index, base, check, leak_records, clean_records, text_only)


def measure(label: str, index: SemanticIndex, settings: Settings, check: FunctionalCheck,
            leak_records: list[dict[str, Any]], clean_records: list[dict[str, Any]],
            stage: str | None, *more: list[Hit]) -> None:
    """Recall and clean FPs of one stage (``stage``) or of every stage (None, with the
    extra hits of the 13-gram gate)."""
    screen = Screen.create(index, settings, check, workers=2)
    lf, cf = screen.screen(leak_records), screen.screen(clean_records)
    if stage is None:
        leak_hits = hits_of(lf, TEXT) + hits_of(lf, FUNCTIONAL)
        clean_hits = [Hit(f.record, f.benchmark, f.item_id) for f in cf]
        show(label, caught(LEAKS, leak_hits), flagged(len(CLEAN), clean_hits))
        label, leak_hits, clean_hits = "  and the 13-gram gate", leak_hits + more[0], \
            clean_hits + more[1]
    else:
        leak_hits = hits_of(lf, stage)
        clean_hits = [Hit(f.record, f.benchmark, f.item_id) for f in cf if f.stage == stage]
    show(label, caught(LEAKS, leak_hits), flagged(len(CLEAN), clean_hits))


def curve(name: str, index: SemanticIndex, base: Settings, check: FunctionalCheck,
          leak_records: list[dict[str, Any]], clean_records: list[dict[str, Any]],
          text_only: list[dict[str, Any]]) -> None:
    """Recall and false positives of one text method over its thresholds (the other off).

    Recall is the text stage's alone (functional off). False positives: on the clean set
    as the text stage meets it in the pipeline (code records; items the functional stage
    settled are spared), on the clean tasks alone as prose records, and on standard-library
    docstrings as prose records (unrelated text)."""
    semantic = base.embeddings != "off"
    off = float("inf")
    settings = replace(base, semantic_threshold=-1.0 if semantic else off,
                       semantic_threshold_prose=-1.0 if semantic else off,
                       lexical_threshold=off if semantic else -1.0,
                       lexical_threshold_prose=off if semantic else -1.0)
    alone = Screen.create(index, replace(settings, functional="off"), None)
    piped = Screen.create(index, settings, check, workers=2)
    stdlib_code = stdlib_records(1000)
    stdlib_prose = [{**r, "response": "", "evidence": {}} for r in stdlib_code[:500]]
    scores = {"leak": best_scores(alone.screen(leak_records), len(leak_records), LEAKS),
              "clean": best_scores(piped.screen(clean_records), len(clean_records), None),
              "code": best_scores(piped.screen(stdlib_code), len(stdlib_code), None),
              "text": best_scores(alone.screen(text_only), len(text_only), None),
              "stdlib": best_scores(alone.screen(stdlib_prose), len(stdlib_prose), None)}
    method = "embedding" if semantic else "lexical"
    print(f"  {method} text threshold ({name}): recall per kind (text stage alone) | FPs: "
          f"clean set and {len(stdlib_code)} standard-library functions (code, in the "
          f"pipeline) | clean tasks and {len(stdlib_prose)} standard-library docstrings "
          "(prose)")
    for step in range(12):
        th = round((0.35 if not semantic else 0.50) + 0.05 * step, 2)
        hit = [s is not None and s >= th for s in scores["leak"]]
        kinds = recall_by_kind(LEAKS, hit)
        fps = [sum(s is not None and s >= th for s in scores[k])
               for k in ("clean", "code", "text", "stdlib")]
        per = " ".join(f"{a:2d}/{b}" for a, b in kinds.values())
        print(f"    >= {th:.2f}: {sum(hit):3d}/{len(hit)} [{per}] | {fps[0]:2d} {fps[1]:3d} | "
              f"{fps[2]:2d} {fps[3]:3d}")
    worst = {k: max((s for s in scores[k] if s is not None), default=0.0)
             for k in ("clean", "code", "stdlib")}
    print(f"    (kinds: {', '.join(KINDS)}; highest scores: clean set {worst['clean']:.3f}, "
          f"standard-library code {worst['code']:.3f}, prose {worst['stdlib']:.3f})")


def best_scores(findings: Sequence[Finding], count: int,
                entries: Sequence[dict[str, Any]] | None) -> list[float | None]:
    """Per record, the best text score (for a leak: the one naming its own item)."""
    best: list[float | None] = [None] * count
    for f in findings:
        if f.stage != TEXT or f.score is None:
            continue
        if entries is not None and (f.benchmark, f.item_id) != (
                entries[f.record]["benchmark"], entries[f.record]["item"]):
            continue
        current = best[f.record]
        best[f.record] = f.score if current is None else max(current, f.score)
    return best


def wired_quality(root: Path) -> None:
    """Per stage, through the one API (:func:`convergent.contamination.contaminated`), with
    the gate's settings and the dataset build's, with and without the embedding model: a
    leak counts at the first stage that names its item (the n-gram stage refuses a record
    before the others run); false positives: clean items refused by any stage."""
    from convergent.contamination import NGRAM, contaminated

    entries, cleans = leaks(), clean()
    models = ("off", "auto") if embedding.available() else ("off",)
    for build in (False, True):
        for model in models:
            config = default_config()
            config["decontamination"].update(embeddings=model, embeddings_build=model)
            began = time.perf_counter()
            found = contaminated(root, config, [as_record(e) for e in entries], build=build)
            bad = contaminated(root, config, [as_record(e) for e in cleans], build=build)
            took = time.perf_counter() - began
            label = f"{'build' if build else 'gate/emit'} settings, embeddings {model}"
            print(f"wired API, {label} ({took:.0f} s):")
            total_hit = [False] * len(entries)
            for stage in (NGRAM, TEXT, FUNCTIONAL):
                hits = [Hit(f.record, f.benchmark, f.item_id) for f in found
                        if f.stage == stage]
                hit = caught(entries, hits)
                total_hit = [a or b for a, b in zip(total_hit, hit, strict=True)]
                fp = sum(flagged(len(cleans), [Hit(f.record, f.benchmark, f.item_id)
                                               for f in bad if f.stage == stage]))
                kinds = recall_by_kind(entries, hit)
                print(f"  {stage:10s} recall {sum(hit):3d}/{len(entries)} "
                      + " ".join(f"{k} {a}/{b}" for k, (a, b) in kinds.items())
                      + f" | clean FP {fp}/{len(cleans)}")
            fp_any = len({f.record for f in bad})
            tp = sum(total_hit)
            precision = tp / max(1, tp + fp_any)
            recall = tp / len(entries)
            f1 = 2 * precision * recall / max(1e-9, precision + recall)
            print(f"  all stages recall {tp}/{len(entries)}, clean FP {fp_any}/{len(cleans)}, "
                  f"F1 {f1:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10000,
                        help="records in the check-sized batch")
    parser.add_argument("--quality", action="store_true",
                        help="also print recall / false positives on the corpus")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed figures")
    parser.add_argument("--wired", action="store_true",
                        help="also print recall / false positives per stage through the "
                             "wired API (gate and dataset-build settings)")
    parser.add_argument("--floor", type=float, help="override the shortlist floor")
    parser.add_argument("--cache", type=Path, help="keep caches here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.floor is not None:
        global DEFAULTS
        DEFAULTS = replace(DEFAULTS, floor=args.floor)
    print(f"semantic decontamination bench, python {sys.version.split()[0]}, "
          f"embeddings {'installed' if embedding.available() else 'not installed'}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        # Embeddings are cached in the user cache dir: this run's own, so cold is cold.
        os.environ["XDG_CACHE_HOME"] = str(cache / "xdg")
        config = default_config()
        index = cold(lambda: humaneval_tasks() + holdout_tasks(None, config))
        if not args.no_speed:
            speed(args, index, cache)
            hitting(index, cache)
        if args.quality:
            quality(index, cache)
        if args.wired:
            plain = cache / "plain"  # no records repo: functional runs in the user cache
            plain.mkdir(exist_ok=True)
            wired_quality(plain)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
