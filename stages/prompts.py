"""Stage ``prompts`` (paper eq. 8-9, figure 4, supp. G): one prompt per identity x scarce emotion.

Reads ``seed``, ``decompose.scarce_classes``, ``asi``, ``data/interim/identities.parquet``, the identity
images and ``data/interim/au_kb.parquet``. Writes ``data/interim/prompts.parquet`` (raw lines, the final
prompt X_T with AU codes removed, the retrieved entries, the verification record per prompt),
``reports/prompts/metrics.json`` (hallucination rates with and without retrieval) and
``reports/prompts/examples.md`` (a few prompts to read).
"""

import logging

from argen.asi.facs import load_facs
from argen.asi.kb import read_knowledge_base
from argen.asi.prompts import build_requests, fixed_prompts, generate_prompts, hallucination_metrics, make_composer
from argen.errors import InputError
from argen.extract import LANDMARK_COLUMNS
from argen.identities import read_identity_image
from argen.io import read_table, staged_outputs
from argen.params import Params
from argen.paths import IDENTITIES, IDENTITY_IMAGES as IMAGES, KB, PROMPTS, report_dir
from argen.stage import provenance, run_stage

REPORTS = report_dir("prompts")

log = logging.getLogger("argen.stages.prompts")


def main(params: Params) -> None:
    cfg, scarce = params.asi, params.decompose.scarce_classes
    identities = read_table(IDENTITIES, ["clip_id", "subject", "image_file", *LANDMARK_COLUMNS], "identities")
    if identities.empty:
        raise InputError(f"{IDENTITIES} holds no identity: there is nothing to write prompts for")
    metrics: dict = {"mode": cfg.mode, "backend": cfg.backend if cfg.mode != "fixed" else "none"}
    if cfg.mode == "fixed":
        prompts = fixed_prompts(identities, scarce)
    else:
        facs = load_facs()
        kb = read_knowledge_base(KB, scarce, facs)
        for emotion in sorted(set(scarce) - set(kb.emotion)):
            log.info("%s: no knowledge-base entry (au_kb.data_check left out every one): its prompts name the "
                     "emotion and cite no AU", emotion)
        images = {row.clip_id: read_identity_image(IMAGES / row.image_file) for row in identities.itertuples()}
        composer = make_composer(cfg, params.seed)
        requests = build_requests(identities, images, kb, scarce, cfg.mode, cfg.k, cfg.retrieval, params.seed)
        prompts = generate_prompts(requests, composer, kb, facs, cfg.on_hallucination, cfg.max_tries)
        metrics[cfg.mode] = hallucination_metrics(prompts)
        if cfg.mode == "vlm_rag" and cfg.measure_without_retrieval:
            plain = [request.without_retrieval() for request in requests]
            metrics["vlm_only"] = hallucination_metrics(
                generate_prompts(plain, composer, kb, facs, cfg.on_hallucination, 1))
        metrics["actions"] = prompts.action.value_counts().to_dict()
    prompts.insert(2, "mode", cfg.mode)
    prompts = prompts.merge(identities[["clip_id", "subject"]].rename(columns={"clip_id": "identity_id"}),
                            on="identity_id", how="left")
    meta = provenance("prompts", params, "asi", backend=metrics["backend"],
                      model_path=cfg.qwen_path if cfg.backend == "qwen2_5_vl" else "")
    lines = [f"# Example prompts ({cfg.mode}, {metrics['backend']})", ""]
    for row in prompts.groupby("emotion", sort=False).head(2).itertuples():
        lines += [f"**{row.emotion}**, identity {row.identity_id} ({row.action})", "",
                  f"- raw: `{row.raw_final}`" if row.raw_final else "- raw: (none)", f"- X_T: {row.prompt}", ""]
    with staged_outputs() as out:
        out.parquet(prompts, PROMPTS, metadata=meta)
        out.json(metrics, REPORTS / "metrics.json")
        out.path(REPORTS / "examples.md").write_text("\n".join(lines))
    log.info("%d prompts (%s, %s): %s", len(prompts), cfg.mode, metrics["backend"],
             {k: v for k, v in metrics.items() if k in ("vlm_rag", "vlm_only")})


if __name__ == "__main__":
    run_stage(main)
