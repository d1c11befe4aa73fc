"""Population specs: what a `conf/population/<name>.yaml` file may say, validated with errors
that name the file, the field and the fix.

A spec has one of two routes:
- `route: distributions` (default): `attributes` with proportions (categorical) or ranges
  (numeric), optional `joint` tables and `forbid` rules, plus `fixed` fields every persona gets.
- `route: description`: the paper's phased route; `description` is a path to a JSON or text file
  (or inline text) from which the LLM proposes dimensions, then a plan, then personas.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

#: the repository's conf/ folder (next to the trials package), as trials/cli.py computes it
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
SUM_TOLERANCE = 1e-3


class FactoryError(ValueError):
    """Any failure of the population factory that a user can fix (bad spec, bad plan file...)."""


class SpecError(FactoryError):
    """A bad population spec. `str(err)` reads: "<file>: field '<field>': <problem>. Fix: <fix>"."""

    def __init__(self, source: str, field: str, problem: str, fix: str = "") -> None:
        self.source, self.field, self.problem, self.fix = source, field, problem, fix
        text = f"{source}: field '{field}': {problem}" if field else f"{source}: {problem}"
        super().__init__(text + (f". Fix: {fix}" if fix else ""))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Categorical(_Strict):
    """A categorical attribute: `values` (label -> proportion), or `given` + `table`
    (a distribution of this attribute for each value of another one)."""

    type: Literal["categorical"] = "categorical"
    values: dict[str, float] | None = None
    given: str | None = None
    table: dict[str, dict[str, float]] | None = None
    #: every value must appear at least this many times (N < strata x min_count is an error)
    min_count: int = Field(0, ge=0)
    #: dotted persona field the value is stored in (default: the attribute's name)
    field: str | None = None
    label: str | None = None  # how the prompt names it (default: name with spaces)


class Numeric(_Strict):
    """A numeric attribute: uniform within `range`, or within the band of a categorical
    attribute's label (`band_of: age_range` turns "35-44" into 35..44, "65+" into 65..open_max)."""

    type: Literal["numeric"]
    range: tuple[float, float] | None = None
    band_of: str | None = None
    open_max: float = 90
    integer: bool = True
    bins: int = Field(4, ge=1)  # profile bins for `range` attributes
    field: str | None = None
    label: str | None = None


def _attr_kind(value: Any) -> str:
    return value.get("type", "categorical") if isinstance(value, dict) else "categorical"


Attribute = Annotated[
    Union[Annotated[Categorical, Tag("categorical")], Annotated[Numeric, Tag("numeric")]],
    Discriminator(_attr_kind),
]


class Joint(_Strict):
    """A joint table over several categorical attributes: `cells` rows name a value for each
    attribute plus `p`, the cell's proportion."""

    attributes: list[str] = Field(min_length=2)
    cells: list[dict[str, Any]] = Field(min_length=1)
    field: dict[str, str] = Field(default_factory=dict)  # attribute -> persona field path


class Narrative(_Strict):
    """How the LLM writes the narrative fields."""

    mode: Literal["auto", "json", "text", "template"] = "auto"
    max_tokens: int = Field(220, ge=16)
    temperature: float | None = None
    workers: int = Field(1, ge=1)  # concurrent narrative calls (useful for remote endpoints)


class PopulationSpec(_Strict):
    name: str
    route: Literal["distributions", "description"] = "distributions"
    about: str = ""  # a one-line description of who these people are, shown to the LLM
    n: int = Field(20, ge=1)
    fixed: dict[str, Any] = Field(default_factory=dict)
    attributes: dict[str, Attribute] = Field(default_factory=dict)
    joint: list[Joint] = Field(default_factory=list)
    forbid: list[dict[str, str]] = Field(default_factory=list)
    narrative: Narrative = Field(default_factory=Narrative)
    # description route
    description: str | None = None  # a path to a JSON/text file, or the text itself
    description_max_chars: int = Field(1500, ge=100)
    dimensions: str | None = None  # a path to an (edited) dimensions.json: skip phase 1
    plan: str | None = None  # a path to an (edited) plan.json: skip phases 1-2
    max_dimensions: int = Field(6, ge=1)
    #: where the spec came from, for error messages (not a YAML key)
    source: str = Field("<spec>", exclude=True)


def spec_path(name: str | Path) -> Path:
    """`gazpacho_respondents` -> conf/population/gazpacho_respondents.yaml; a path stays a path."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return CONF_DIR / "population" / f"{name}.yaml"


def load_spec(spec: str | Path | dict[str, Any] | PopulationSpec, *, source: str | None = None) -> PopulationSpec:
    """A spec from a name, a YAML path, a mapping (e.g. a Hydra node) or a spec; validated."""
    if isinstance(spec, PopulationSpec):
        return spec
    if isinstance(spec, dict):
        return validate_spec(spec, source or f"population spec {spec.get('name', '?')!r}")
    path = spec_path(spec)
    if not path.is_file():
        available = sorted(p.stem for p in (CONF_DIR / "population").glob("*.yaml"))
        raise SpecError(str(path), "", "no such population spec", f"use one of {available} or a YAML path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(str(path), "", f"not valid YAML ({exc})", "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise SpecError(str(path), "", "expected a mapping at the top level", "see conf/population/*.yaml")
    data.setdefault("name", path.stem)
    return validate_spec(data, source or str(path))


def validate_spec(data: dict[str, Any], source: str) -> PopulationSpec:
    data = {k: v for k, v in data.items() if k != "source"}
    try:
        spec = PopulationSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if p not in ("categorical", "numeric"))
        if err["type"] == "extra_forbidden":
            raise SpecError(source, loc, "unknown key", "remove it or check its spelling against "
                            "the keys documented in trials/population/spec.py") from None
        raise SpecError(source, loc, err["msg"], "correct the value") from None
    spec.source = source
    _check_semantics(spec)
    return spec


def check_proportions(values: dict[str, float], source: str, field: str) -> None:
    if not values:
        raise SpecError(source, field, "no values given", "list at least one value with its proportion")
    for label, p in values.items():
        if not isinstance(p, (int, float)) or math.isnan(p) or p < 0:
            raise SpecError(source, f"{field}.{label}", f"proportion {p!r} is negative or not a number",
                            "use proportions >= 0")
    total = sum(values.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise SpecError(source, field, f"proportions sum to {total:.4f}, not 1 (tolerance {SUM_TOLERANCE})",
                        "make them add up to 1")


def _check_semantics(spec: PopulationSpec) -> None:
    src = spec.source
    if spec.route == "description":
        if not (spec.description or spec.plan or spec.dimensions):
            raise SpecError(src, "description", "the description route needs a description",
                            "set description=<path to a JSON/text file> (or plan=<plan.json>)")
        return
    if not spec.attributes and not spec.joint:
        raise SpecError(src, "attributes", "no attributes to sample", "add at least one attribute")
    joint_attrs: dict[str, int] = {}
    for gi, group in enumerate(spec.joint):
        for cj, cell in enumerate(group.cells):
            field = f"joint[{gi}].cells[{cj}]"
            missing = [a for a in group.attributes if a not in cell] + ([] if "p" in cell else ["p"])
            unknown = [k for k in cell if k not in group.attributes and k != "p"]
            if missing or unknown:
                raise SpecError(src, field, f"missing {missing} / unknown {unknown} keys",
                                f"give each cell exactly {group.attributes} and p")
        check_proportions({"|".join(str(c[a]) for a in group.attributes): c["p"] for c in group.cells},
                          src, f"joint[{gi}].cells")
        for a in group.attributes:
            if a in spec.attributes or a in joint_attrs:
                raise SpecError(src, f"joint[{gi}].attributes", f"attribute {a!r} is defined twice",
                                "define it either in attributes or in one joint table")
            joint_attrs[a] = gi
    categorical = set(joint_attrs)
    for name, attr in spec.attributes.items():
        field = f"attributes.{name}"
        if isinstance(attr, Categorical):
            categorical.add(name)
            if (attr.values is None) == (attr.given is None):
                raise SpecError(src, field, "give either `values` or `given` + `table`",
                                "e.g. values: {Male: 0.5, Female: 0.5}")
            if attr.values is not None:
                check_proportions(attr.values, src, f"{field}.values")
                k = len(attr.values)
                if attr.min_count * k > spec.n:
                    raise SpecError(src, f"{field}.min_count", f"n={spec.n} is smaller than the {k} strata "
                                    f"x min_count {attr.min_count}", f"use n >= {attr.min_count * k} or min_count: 0")
    for name, attr in spec.attributes.items():
        field = f"attributes.{name}"
        if isinstance(attr, Categorical) and attr.given is not None:
            if attr.given not in categorical or attr.given == name:
                raise SpecError(src, f"{field}.given", f"unknown attribute {attr.given!r}",
                                f"name one of the categorical attributes {sorted(categorical - {name})}")
            if not attr.table:
                raise SpecError(src, f"{field}.table", "missing", "give a distribution per value of "
                                f"{attr.given!r}")
            for parent_value, dist in attr.table.items():
                check_proportions(dist, src, f"{field}.table.{parent_value}")
            missing = [v for v in value_labels(spec, attr.given) if v not in attr.table]
            if missing:
                raise SpecError(src, f"{field}.table", f"no distribution for {attr.given}={missing}",
                                f"add a row for every value of {attr.given!r}")
        if isinstance(attr, Numeric):
            if (attr.range is None) == (attr.band_of is None):
                raise SpecError(src, field, "give either `range: [lo, hi]` or `band_of: <attribute>`",
                                "e.g. band_of: age_range")
            if attr.range is not None and attr.range[0] > attr.range[1]:
                raise SpecError(src, f"{field}.range", "low end above high end", "write [low, high]")
            if attr.band_of is not None and attr.band_of not in categorical:
                raise SpecError(src, f"{field}.band_of", f"unknown attribute {attr.band_of!r}",
                                f"name one of {sorted(categorical)}")
    for ri, rule in enumerate(spec.forbid):
        for a in rule:
            if a not in categorical:
                raise SpecError(src, f"forbid[{ri}].{a}", "unknown attribute",
                                f"forbid rules name categorical attributes: {sorted(categorical)}")


def value_labels(spec: PopulationSpec, name: str) -> list[str]:
    """The possible values of a categorical attribute, in declaration order."""
    for group in spec.joint:
        if name in group.attributes:
            return list(dict.fromkeys(str(c[name]) for c in group.cells))
    attr = spec.attributes[name]
    assert isinstance(attr, Categorical)
    if attr.values is not None:
        return list(attr.values)
    return list(dict.fromkeys(v for dist in (attr.table or {}).values() for v in dist))
