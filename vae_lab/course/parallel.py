"""Run the reference runs a grading needs: in this process, or on Dask workers (local or a cluster)."""

from .reference import ReferenceCache, cache_key, run_configuration, run_serially


def reference_runs(assignments, *, cache_dir, data_dir=None, jobs=1, scheduler=None, timeout=1800, progress=None):
    """{student_id: reference entry, or {'error': reason}} for {student_id: assignment}."""
    configurations = {student: run_configuration(assignment) for student, assignment in assignments.items()}
    unique = list({cache_key(c): c for c in configurations.values()}.values())
    cache = ReferenceCache(cache_dir)
    if jobs > 1 or scheduler:
        raise ValueError("parallel reference runs need Dask: pip install 'vae-lab[class]'")
    results = run_serially(unique, cache, data_dir=data_dir, progress=progress)
    return {student: results[cache_key(configuration)] for student, configuration in configurations.items()}
