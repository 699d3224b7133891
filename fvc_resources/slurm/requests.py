"""What one step asks SLURM for: executor defaults, overridden by the step's ``slurm/*`` tags.

Pure: no dagster. Values are validated here so that a typo in a tag fails the
launch with a message that names the tag, not somewhere inside ``sbatch``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

TAG_PREFIX = "slurm/"

# Tag suffix -> the sbatch long option it becomes.
OPTIONS = {
    "partition": "--partition",
    "account": "--account",
    "qos": "--qos",
    "cpus": "--cpus-per-task",
    "mem": "--mem",
    "time": "--time",
    "gres": "--gres",
    "constraint": "--constraint",
}
EXTRA_ARGS_TAG = TAG_PREFIX + "extra_args"

_MEM = re.compile(r"^\d+[KMGT]?$")
# SLURM time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_TIME = re.compile(r"^(\d+-)?\d+(:\d+){0,2}$")
_WORD = re.compile(r"^[A-Za-z0-9_.:,=+/@%-]+$")


class SlurmRequestError(ValueError):
    """A resource request that sbatch would refuse or misread."""


@dataclass(frozen=True)
class SlurmRequest:
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    cpus: int | None = None
    mem: str | None = None
    time: str | None = None
    gres: str | None = None
    constraint: str | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def sbatch_options(self) -> list[str]:
        """``--option=value`` for every value set, then the extra arguments as given."""
        options = [f"{OPTIONS[f.name]}={getattr(self, f.name)}" for f in fields(self)
                   if f.name in OPTIONS and getattr(self, f.name) is not None]
        return options + list(self.extra_args)

    def merged(self, overrides: SlurmRequest) -> SlurmRequest:
        """These values, with every value ``overrides`` sets taking precedence; extra args add up."""
        changes = {f.name: getattr(overrides, f.name) for f in fields(overrides)
                   if f.name in OPTIONS and getattr(overrides, f.name) is not None}
        return replace(self, **changes, extra_args=self.extra_args + overrides.extra_args)


def _check(name: str, value: str, source: str) -> str:
    value = value.strip()
    if not value:
        raise SlurmRequestError(f"{source}: empty value for {name}")
    if name == "mem" and not _MEM.match(value.upper()):
        raise SlurmRequestError(f"{source}: mem {value!r} is not a size such as 4096, 4000M or 16G")
    if name == "time" and not _TIME.match(value):
        raise SlurmRequestError(f"{source}: time {value!r} is not a SLURM time such as 30, 2:00:00 or 1-12:00:00")
    if name not in ("mem", "time") and not _WORD.match(value):
        raise SlurmRequestError(f"{source}: {name} {value!r} has characters SLURM does not take")
    return value.upper() if name == "mem" else value


def request_from_mapping(values: Mapping[str, object], source: str = "executor config") -> SlurmRequest:
    """A request from ``{partition: ..., cpus: ..., extra_args: [...]}`` (executor config)."""
    kwargs: dict[str, object] = {}
    for name in OPTIONS:
        value = values.get(name)
        if value is None:
            continue
        if name == "cpus":
            kwargs[name] = _cpus(value, source)
        else:
            kwargs[name] = _check(name, str(value), source)
    extra = values.get("extra_args") or ()
    if isinstance(extra, str):
        extra = shlex.split(extra)
    kwargs["extra_args"] = tuple(_extra(str(a), source) for a in extra)
    return SlurmRequest(**kwargs)


def request_from_tags(tags: Mapping[str, str], step_key: str = "step") -> SlurmRequest:
    """A request from a step's ``slurm/<name>`` tags; other tags are ignored.

    ``slurm/extra_args`` is split like a shell would split it (``--exclusive --nice=10``),
    but never run by a shell: each word becomes one sbatch argument.
    """
    source = f"{step_key}: tag"
    values: dict[str, object] = {}
    for key, value in tags.items():
        if not key.startswith(TAG_PREFIX):
            continue
        name = key[len(TAG_PREFIX):]
        if name not in OPTIONS and key != EXTRA_ARGS_TAG:
            raise SlurmRequestError(
                f"{source} {key!r} is not known; known: {', '.join(sorted([*OPTIONS, 'extra_args']))}"
            )
        values[name] = value
    return request_from_mapping(values, source)


def _cpus(value: object, source: str) -> int:
    try:
        cpus = int(str(value).strip())
    except ValueError:
        raise SlurmRequestError(f"{source}: cpus {value!r} is not a whole number") from None
    if cpus < 1:
        raise SlurmRequestError(f"{source}: cpus must be at least 1, got {cpus}")
    return cpus


def _extra(arg: str, source: str) -> str:
    if not arg.startswith("--") or "\n" in arg:
        raise SlurmRequestError(f"{source}: extra argument {arg!r} must be one long option such as --exclusive")
    return arg
