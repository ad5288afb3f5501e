"""Stage 5, runs and their records: the run pipeline, run ids, the run record and its migrations,
where a run writes its files (sinks), claims, sweeps, tuning and recounting. Imports the stages
below it."""
