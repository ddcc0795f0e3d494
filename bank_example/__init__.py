"""The example Dagster project: a demo retail bank whose dbt models opt in to synthetic twins.

It uses synth_platform exactly as a data team would: a `DbtProjectComponent` loads the dbt
project (`dbt_project/`), and a `SyntheticTwinsComponent` (`defs/twins/defs.yaml`) adds the
twins. Only the demo source (`defs/source.py`) is specific to this example.
"""
