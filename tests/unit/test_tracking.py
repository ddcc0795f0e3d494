"""MLflow tracking (synth_platform.lib.tracking)."""

import os


def test_logging_a_fit_does_not_leak_the_tracking_uri_into_the_environment(tmp_path, monkeypatch):
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; build_definitions reads it, so a
    # fit in one home must not redirect the next definitions load of the process.
    import pandas as pd
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    from synth_platform.lib.tracking import log_training

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    meta = {"tables": {"t": {"columns": {"x": {"sdtype": "numerical"}}}}}
    synthesizer = GaussianCopulaSynthesizer(Metadata.load_from_dict(meta))
    synthesizer.fit({"t": frame})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = log_training(
        tracking_uri=uri, artifact_root=tmp_path / "artifacts", table="t", params={}, tags={},
        metrics={}, synthesizer=synthesizer, metadata_json=meta, pip_requirements=[],
    )  # fmt: skip
    assert run.model_version == "1"
    assert "MLFLOW_TRACKING_URI" not in os.environ
