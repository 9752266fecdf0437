"""Planning a run: shards, duplicate keys, the run key and what an earlier run already committed.

Every rule that decides *what* a run does lives here, once, for every orchestrator:

- the manifest is split into shards (:func:`~prefect_flux_erase.manifest.plan.plan_manifest`);
- rows repeating an earlier row's key are marked to fail with ``duplicateRowKey``
  (:func:`~prefect_flux_erase.manifest.keys.mark_duplicate_keys`);
- the run key is derived from the manifest, output, wire options, backend and columns
  (:func:`~prefect_flux_erase.shards.job.compute_run_key`): the same run resumes, a changed
  option starts afresh;
- shards already committed by a run with the same key are skipped: no request is made for
  them — unless a row of theirs is one a rerun tries again: a retryable failure, a final one
  whose inputs changed since, or one whose code ``retry_failed`` names
  (:mod:`~prefect_flux_erase.results.outcome_codes`); such a shard runs again, for those rows
  only (:mod:`~prefect_flux_erase.shards.reruns`).

Example:
    ```python
    run = plan_run(RunSpec("s3://b/m.parquet", "s3://b/out", shard_size=100).check())
    run.todo            # the shards left to run
    ```
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from prefect_flux_erase.manifest.keys import mark_duplicate_keys
from prefect_flux_erase.manifest.plan import ManifestPlan, ManifestSpec, Shard, plan_manifest
from prefect_flux_erase.results.assemble import PartFooter, part_footers
from prefect_flux_erase.results.outcome_codes import retry_codes
from prefect_flux_erase.run.spec import RunSpec, pipeline_options
from prefect_flux_erase.shards.job import ShardJob, compute_run_key

if TYPE_CHECKING:
    from prefect_flux_erase.costs.estimate import CostEstimate


@dataclass(frozen=True)
class RunPlan:
    """A checked run and its plan: the job every shard runs with, and the shards left to run.

    Example:
        ```python
        run = plan_run(spec)
        print(run.describe())
        ```
    """

    spec: RunSpec
    job: ShardJob
    plan: ManifestPlan
    todo: list[Shard]
    #: What the rows left will bill, from their headers (``runware`` backend), and how the
    #: cost cap was shared out (:mod:`~prefect_flux_erase.costs`).
    estimate: CostEstimate | None = None

    @property
    def run_key(self) -> str:
        """The run key (names the run, derives every row's task UUID)."""
        return self.job.run_key

    @property
    def skipped_rows(self) -> int:
        """Rows of shards an earlier run with the same key committed."""
        todo = {s.index for s in self.todo}
        return sum(s.num_rows for s in self.plan.shards if s.index not in todo)

    @property
    def shards_skipped(self) -> int:
        """Shards an earlier run with the same key committed."""
        return len(self.plan.shards) - len(self.todo)

    @property
    def duplicate_rows(self) -> int:
        """Rows that repeat an earlier row's key (they fail with ``duplicateRowKey``)."""
        return sum(len(s.duplicates) for s in self.plan.shards)


def manifest_spec(spec: RunSpec) -> ManifestSpec:
    """The manifest part of a run spec (URI, columns, storage options).

    Example:
        >>> manifest_spec(RunSpec("m.parquet", "out", image_column="photo")).image_column
        'photo'
    """
    return ManifestSpec(
        spec.manifest,
        storage_options=dict(spec.storage_options or {}),
        image_column=spec.image_column,
        mask_column=spec.mask_column,
        key_column=spec.key_column,
    )


def build_job(spec: RunSpec) -> ShardJob:
    """The job every shard of ``spec`` runs with; cheap (reads nothing), so a worker can rebuild
    it from the spec instead of receiving it.

    Example:
        >>> job = build_job(RunSpec("m.parquet", "memory://out/").check())
        >>> job.output, len(job.run_key)
        ('memory://out', 32)
    """
    run_key = compute_run_key(
        manifest=spec.manifest,
        output=spec.output,
        options=spec.options,
        backend=spec.backend,
        columns={"image": spec.image_column, "mask": spec.mask_column, "key": spec.key_column},
    )
    return ShardJob(
        manifest=manifest_spec(spec),
        output=spec.output,
        run_key=run_key,
        backend=spec.backend,
        # The run key above hashes the options as given; the rows go with the pipeline's.
        options=pipeline_options(spec.options),
        runware=spec.runware,
        output_storage_options=spec.out_storage_options,
        input_storage_options=spec.storage_options,
        concurrency=spec.concurrency,
        max_attempts=spec.max_attempts,
        poll_timeout=spec.poll_timeout,
        pass_urls=spec.pass_urls,
        allow_private_hosts=tuple(spec.allow_private_hosts),
        dedupe=spec.dedupe,
        cache=spec.cache,
        cache_storage_options=spec.cache_storage_options,
        upload_inputs=spec.upload_inputs,
        poll_policy=spec.poll_policy,
        retry_policy=spec.retry_policy,
        local_engine=spec.local_engine,
        retry_failed=retry_codes(spec.retry_failed),
        max_shards_in_flight=spec.max_shards_in_flight,
    )


def plan_run(spec: RunSpec) -> RunPlan:
    """Check ``spec``, plan its manifest and find what is left to run.

    Raises:
        RunConfigError: an invalid option. ManifestError: a missing or unreadable manifest,
            or a missing column.

    Example:
        ```python
        run = plan_run(RunSpec("m.parquet", "out"))
        run.todo, run.skipped_rows, run.run_key
        ```
    """
    spec = spec.check()
    job = build_job(spec)
    # Rows sharing a key would share a task UUID and an output file: the first one runs.
    plan = mark_duplicate_keys(
        job.manifest, plan_manifest(job.manifest, shard_size=spec.shard_size)
    )
    footers = part_footers(spec.output, job.run_key, spec.out_storage_options)
    todo = [s for s in plan.shards if _has_work(job, s, footers.get(s.index))]
    run = RunPlan(spec=spec, job=job, plan=plan, todo=todo)
    if spec.backend == "runware" and todo:
        from prefect_flux_erase.run.estimate import plan_costs

        run = plan_costs(run)
    return run


def _has_work(job: ShardJob, shard: Shard, footer: PartFooter | None) -> bool:
    """Whether a shard runs: not committed yet, or a row of its part is one to run again."""
    if footer is None or footer.needs_rerun(job.retry_failed):
        return True
    if not footer.inputs:
        return False
    # Rows that failed for good: did their inputs change since? (Their metadata, not bytes.)
    from prefect_flux_erase.manifest.plan import read_shard
    from prefect_flux_erase.shards.reruns import changed_rows
    from prefect_flux_erase.shards.rows import ticket_for

    rows = [ticket_for(r, job) for r in read_shard(job.manifest, shard)]
    return bool(changed_rows([t for t in rows if t.row_index in footer.inputs], footer.inputs, job))


def shard_to_dict(shard: Shard) -> dict[str, Any]:
    """A JSON-safe description of a shard (for XCom, queues, logs).

    Example:
        >>> import json
        >>> shard = Shard(3, "m.parquet", 300, 400, 300, ((350, 10),))
        >>> described = json.dumps(shard_to_dict(shard))
        >>> shard_from_dict(json.loads(described)).duplicates
        ((350, 10),)
    """
    data = asdict(shard)
    for name in ("duplicates", "shared", "unbudgeted"):
        data[name] = [list(pair) for pair in getattr(shard, name)]
    return data


def shard_from_dict(data: dict[str, Any]) -> Shard:
    """The shard :func:`shard_to_dict` described.

    Example:
        >>> s = Shard(3, "m.parquet", 300, 400, 300, ((350, 10),))
        >>> shard_from_dict(shard_to_dict(s)) == s
        True
    """
    return Shard(
        index=int(data["index"]),
        file=str(data["file"]),
        row_start=int(data["row_start"]),
        row_stop=int(data["row_stop"]),
        global_start=int(data["global_start"]),
        duplicates=tuple((int(a), int(b)) for a, b in data.get("duplicates", ())),
        shared=tuple((int(a), int(b)) for a, b in data.get("shared", ())),
        unbudgeted=tuple((int(a), int(b)) for a, b in data.get("unbudgeted", ())),
    )
