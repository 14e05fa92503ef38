"""Stage ``prompts`` (paper eq. 8-9, figure 4, supp. G): one prompt per identity x scarce emotion.

Reads ``seed``, ``decompose.scarce_classes``, ``asi``, ``data/interim/identities.parquet``, the identity
images and ``data/interim/au_kb.parquet``. Writes ``data/interim/prompts.parquet`` (raw lines, the final
prompt X_T with AU codes removed, the retrieved entries, the verification record per prompt),
``reports/prompts/metrics.json`` (hallucination rates with and without retrieval) and
``reports/prompts/examples.md`` (a few prompts to read).
"""

import logging
from pathlib import Path

import cv2
import pandas as pd

from argen.asi.facs import load_facs
from argen.asi.prompts import TemplateComposer, VLMComposer, build_requests, fixed_prompts, generate_prompts, \
    hallucination_metrics
from argen.io import atomic_path, write_json, write_parquet
from argen.params import Params
from argen.stage import provenance, run_stage

IDENTITIES = Path("data/interim/identities.parquet")
IMAGES = Path("data/interim/identities")
KB = Path("data/interim/au_kb.parquet")
PROMPTS = Path("data/interim/prompts.parquet")
REPORTS = Path("reports/prompts")

log = logging.getLogger("argen.stages.prompts")


def make_composer(params: Params):
    """The composer ``asi.backend`` names (the VLM loads its local weights here, or fails naming the path)."""
    cfg = params.asi
    if cfg.backend == "qwen2_5_vl":
        from argen.asi.vlm import QwenVLBackend
        model = QwenVLBackend(cfg.qwen_path, device=cfg.device, batch_size=cfg.batch_size,
                              temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens)
        return VLMComposer(model, params.seed)
    return TemplateComposer(load_facs(), cfg.max_aus)


def main(params: Params) -> None:
    cfg, scarce = params.asi, params.decompose.scarce_classes
    identities = pd.read_parquet(IDENTITIES)
    kb = pd.read_parquet(KB)
    metrics: dict = {"mode": cfg.mode, "backend": cfg.backend if cfg.mode != "fixed" else "none"}
    if cfg.mode == "fixed":
        prompts = fixed_prompts(identities, scarce)
    else:
        facs, composer = load_facs(), make_composer(params)
        images = {row.clip_id: cv2.imread(str(IMAGES / row.image_file)) for row in identities.itertuples()}
        requests = build_requests(identities, images, kb, scarce, cfg.mode, cfg.k, cfg.retrieval, params.seed)
        prompts = generate_prompts(requests, composer, kb, facs, cfg.on_hallucination, cfg.max_tries)
        metrics[cfg.mode] = hallucination_metrics(prompts)
        if cfg.mode == "vlm_rag" and cfg.measure_without_retrieval:
            plain = build_requests(identities, images, kb, scarce, "vlm_only", cfg.k, cfg.retrieval, params.seed)
            metrics["vlm_only"] = hallucination_metrics(
                generate_prompts(plain, composer, kb, facs, cfg.on_hallucination, 1))
        metrics["actions"] = prompts.action.value_counts().to_dict()
    prompts.insert(2, "mode", cfg.mode)
    prompts = prompts.merge(identities[["clip_id", "subject"]].rename(columns={"clip_id": "identity_id"}),
                            on="identity_id", how="left")
    meta = provenance("prompts", params, "asi", backend=metrics["backend"],
                      model_path=cfg.qwen_path if cfg.backend == "qwen2_5_vl" else "")
    write_parquet(prompts, PROMPTS, metadata=meta)
    REPORTS.mkdir(parents=True, exist_ok=True)
    write_json(metrics, REPORTS / "metrics.json")
    with atomic_path(REPORTS / "examples.md") as tmp:
        lines = [f"# Example prompts ({cfg.mode}, {metrics['backend']})", ""]
        for row in prompts.groupby("emotion", sort=False).head(2).itertuples():
            lines += [f"**{row.emotion}**, identity {row.identity_id} ({row.action})", "",
                      f"- raw: `{row.raw_final}`" if row.raw_final else "- raw: (none)", f"- X_T: {row.prompt}", ""]
        tmp.write_text("\n".join(lines))
    log.info("%d prompts (%s, %s): %s", len(prompts), cfg.mode, metrics["backend"],
             {k: v for k, v in metrics.items() if k in ("vlm_rag", "vlm_only")})


if __name__ == "__main__":
    run_stage(main)
