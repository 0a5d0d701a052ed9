"""Latent-code specs and the ordered, named :class:`CodeSet`.

A generator's input is ``z = (noise, c1, ..., cL)`` with independent codes,
``p(c) = prod_i p(c_i)``. Each code is described by a frozen dataclass that knows

* ``input_dim``: its width in the generator input (one-hot for a categorical code),
* ``n_params``: how many numbers the Q head must output for it,
* ``sample(n, rng)``: draws from its prior (``rng``: a ``torch.Generator``),
* ``entropy()``: its prior entropy H(c) in nats (for continuous codes this is the
  *differential* entropy, which can be negative and is not invariant to rescaling),
* ``log_q(params, value)``: log Q(c|x) under the Q head's distribution,
* ``traversal(steps, span)``: the values to sweep in a traversal picture.

Values are tensors of shape ``(n,)``: ``long`` category indices for categorical codes,
``float`` for continuous codes.

Code types beyond the built-in ones come from plugins (the ``register_code_types`` hook); the
registry passes its table of types to :meth:`CodeSet.parse` and :meth:`CodeSet.from_json`, which
otherwise know the built-in types only. The spec syntax, documented in the README::

    "cat:10,uniform*2"
    "digit=cat:10,rotation=uniform:-1:1,gaussian:0:1:learned"
    "azimuth=angle:180,uniform:fixed*3"
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping

import torch
import torch.nn.functional as F

_LOG_2PI = math.log(2 * math.pi)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_CODES = 256


class CodeSpec:
    """Base class of every code type. Subclasses are frozen dataclasses.

    Subclasses set ``kind`` (the token used in spec strings and JSON), may set ``aliases``,
    and implement :meth:`from_args` (the ``:``-separated arguments of a spec token) and
    :meth:`to_token` (the inverse). ``to_json`` / ``from_json`` use the dataclass fields.
    """

    kind: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    forms: ClassVar[tuple[str, ...]] = ()  # human-readable accepted forms, for error messages
    discrete: ClassVar[bool] = False

    # -- description -------------------------------------------------------------------------
    @classmethod
    def from_args(cls, args: list[str]) -> "CodeSpec":  # pragma: no cover - abstract
        raise NotImplementedError

    def to_token(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        d = {"type": self.kind}
        d.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})  # type: ignore[arg-type]
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "CodeSpec":
        fields = {k: v for k, v in d.items() if k != "type"}
        unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ValueError(f"code type {cls.kind!r} has no field(s) {sorted(unknown)}")
        return cls(**fields)

    # -- behaviour ---------------------------------------------------------------------------
    input_dim: int
    n_params: int

    def sample(self, n: int, rng: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def to_input(self, value: torch.Tensor) -> torch.Tensor:
        """The ``(n, input_dim)`` float block this value contributes to the generator input."""
        return value.float().unsqueeze(1)

    def entropy(self) -> float:  # pragma: no cover
        raise NotImplementedError

    def params(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover
        """Turn the Q head's ``(n, n_params)`` raw block into named distribution parameters."""
        raise NotImplementedError

    def log_q(self, params: Mapping[str, torch.Tensor], value: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def point_estimate(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def traversal(self, steps: int = 10, span: tuple[float, float] | None = None) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def value_from_text(self, text: str) -> float:
        """Parse a fixed value given on the command line (``--set c1=3``)."""
        return float(text)


def _split_learned_or_fixed(args: list[str]) -> tuple[list[str], str]:
    """A spec token's arguments without a trailing ``learned`` / ``fixed``, and that word (default
    ``learned``): how Q's spread is chosen for every continuous code type."""
    if args and args[-1] in ("learned", "fixed"):
        return args[:-1], args[-1]
    return args, "learned"


def _num(tok: str, what: str) -> float:
    try:
        v = float(tok)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {tok!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {tok!r}")
    return v


@dataclass(frozen=True)
class Categorical(CodeSpec):
    """A uniform categorical code over ``k`` values, fed to the generator one-hot."""

    k: int = 10
    kind: ClassVar[str] = "cat"
    aliases: ClassVar[tuple[str, ...]] = ("categorical",)
    forms: ClassVar[tuple[str, ...]] = ("cat:K (K >= 2)",)
    discrete: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 2:
            raise ValueError(f"a categorical code needs an integer k >= 2, got {self.k!r}")
        if self.k > 100_000:
            raise ValueError(f"a categorical code of k={self.k} is too large (at most 100000)")

    @classmethod
    def from_args(cls, args: list[str]) -> "Categorical":
        if len(args) != 1:
            raise ValueError("cat takes exactly one argument, the number of categories")
        try:
            k = int(args[0])
        except ValueError:
            raise ValueError(f"the number of categories must be an integer, got {args[0]!r}") from None
        return cls(k)

    def to_token(self) -> str:
        return f"cat:{self.k}"

    @property
    def input_dim(self) -> int:  # type: ignore[override]
        return self.k

    @property
    def n_params(self) -> int:  # type: ignore[override]
        return self.k

    def sample(self, n, rng=None, device="cpu"):
        return torch.randint(0, self.k, (n,), generator=rng, device=device)

    def to_input(self, value):
        return F.one_hot(value.long(), self.k).float()

    def entropy(self) -> float:
        return math.log(self.k)

    def params(self, raw):
        return {"logits": raw}

    def log_q(self, params, value):
        # cross_entropy works on logits (log-softmax inside); never softmax first.
        return -F.cross_entropy(params["logits"].float(), value.long(), reduction="none")

    def point_estimate(self, params):
        return params["logits"].argmax(dim=1)

    def traversal(self, steps=10, span=None):
        return torch.arange(self.k)

    def value_from_text(self, text):
        try:
            v = int(text)
        except ValueError:
            raise ValueError(f"a categorical value must be an integer in 0..{self.k - 1}, got {text!r}") from None
        if not 0 <= v < self.k:
            raise ValueError(f"a categorical value must be in 0..{self.k - 1}, got {v}")
        return v


class _Continuous(CodeSpec):
    """Shared behaviour of continuous codes: Q models them as a Gaussian N(mean, std).

    ``q_std`` is ``"learned"`` (Q outputs mean and a softplus-positive std, 2 params) or
    ``"fixed"`` (std 1, Q outputs the mean only, 1 param; log Q is then a scaled squared error).
    """

    q_std: str
    MIN_STD: ClassVar[float] = 1e-2

    def _check_q_std(self) -> None:
        if self.q_std not in ("learned", "fixed"):
            raise ValueError(f"q_std must be 'learned' or 'fixed', got {self.q_std!r}")

    @property
    def input_dim(self) -> int:  # type: ignore[override]
        return 1

    @property
    def n_params(self) -> int:  # type: ignore[override]
        return 2 if self.q_std == "learned" else 1

    def params(self, raw):
        mean = raw[:, 0]
        if self.q_std == "learned":
            std = F.softplus(raw[:, 1]) + self.MIN_STD
        else:
            std = torch.ones_like(mean)
        return {"mean": mean, "std": std}

    def log_q(self, params, value):
        mean, std = params["mean"].float(), params["std"].float()
        z = (value.float() - mean) / std
        return -0.5 * z * z - torch.log(std) - 0.5 * _LOG_2PI

    def point_estimate(self, params):
        return params["mean"]

    def _std_token(self) -> str:
        return "" if self.q_std == "learned" else ":fixed"


@dataclass(frozen=True)
class Uniform(_Continuous):
    """A continuous code with prior Uniform(low, high); H(c) = ln(high - low) (differential)."""

    low: float = -1.0
    high: float = 1.0
    q_std: str = "learned"
    kind: ClassVar[str] = "uniform"
    aliases: ClassVar[tuple[str, ...]] = ("unif", "u")
    forms: ClassVar[tuple[str, ...]] = ("uniform", "uniform:LOW:HIGH", "uniform:LOW:HIGH:fixed|learned")

    def __post_init__(self) -> None:
        self._check_q_std()
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or not self.low < self.high:
            raise ValueError(f"uniform needs finite low < high, got low={self.low}, high={self.high}")

    @classmethod
    def from_args(cls, args):
        args, q_std = _split_learned_or_fixed(args)
        if len(args) == 0:
            return cls(q_std=q_std)
        if len(args) != 2:
            raise ValueError("uniform takes no arguments or LOW:HIGH")
        return cls(low=_num(args[0], "LOW"), high=_num(args[1], "HIGH"), q_std=q_std)

    def to_token(self):
        return f"uniform:{self.low!r}:{self.high!r}{self._std_token()}"

    def sample(self, n, rng=None, device="cpu"):
        u = torch.rand((n,), generator=rng, device=device)
        return self.low + (self.high - self.low) * u

    def entropy(self):
        return math.log(self.high - self.low)

    def traversal(self, steps=10, span=None):
        lo, hi = span if span is not None else (2 * self.low, 2 * self.high)
        return torch.linspace(lo, hi, steps)


@dataclass(frozen=True)
class Gaussian(_Continuous):
    """A continuous code with prior N(mean, std^2); H(c) = 0.5 ln(2 pi e std^2) (differential)."""

    mean: float = 0.0
    std: float = 1.0
    q_std: str = "learned"
    kind: ClassVar[str] = "gaussian"
    aliases: ClassVar[tuple[str, ...]] = ("normal", "gauss", "n")
    forms: ClassVar[tuple[str, ...]] = ("gaussian", "gaussian:MEAN:STD", "gaussian:MEAN:STD:fixed|learned")

    def __post_init__(self) -> None:
        self._check_q_std()
        object.__setattr__(self, "mean", float(self.mean))
        object.__setattr__(self, "std", float(self.std))
        if not (math.isfinite(self.mean) and math.isfinite(self.std)) or self.std <= 0:
            raise ValueError(f"gaussian needs a finite mean and std > 0, got mean={self.mean}, std={self.std}")

    @classmethod
    def from_args(cls, args):
        args, q_std = _split_learned_or_fixed(args)
        if len(args) == 0:
            return cls(q_std=q_std)
        if len(args) != 2:
            raise ValueError("gaussian takes no arguments or MEAN:STD")
        return cls(mean=_num(args[0], "MEAN"), std=_num(args[1], "STD"), q_std=q_std)

    def to_token(self):
        return f"gaussian:{self.mean!r}:{self.std!r}{self._std_token()}"

    def sample(self, n, rng=None, device="cpu"):
        return self.mean + self.std * torch.randn((n,), generator=rng, device=device)

    def entropy(self):
        return 0.5 * math.log(2 * math.pi * math.e * self.std ** 2)

    def traversal(self, steps=10, span=None):
        lo, hi = span if span is not None else (self.mean - 2 * self.std, self.mean + 2 * self.std)
        return torch.linspace(lo, hi, steps)


@dataclass(frozen=True)
class Angle(CodeSpec):
    """An angle in degrees, Uniform over an arc of ``span`` degrees centred on 0 (360: the whole
    circle), for a factor that turns: the azimuth of a head or a chair.

    G reads it as ``(cos, sin)``, so one code can sweep a turn whose images go round a curve (left
    profile, front, right profile), which a uniform code can only follow with the help of a second
    one. Q models it as a von Mises distribution with natural parameter ``m`` (its two outputs):
    ``log Q(theta|x) = m . (cos theta, sin theta) - ln(2 pi I0(|m|))`` per radian, so Q's
    concentration is ``|m|`` and its reading ``atan2(m)``; this is a unit-variance Gaussian on the
    point ``(cos, sin)``, normalised on the circle, and G's gradient from it stays bounded however
    sure Q is. Densities are per degree: H(c) = ln(span).

    ``q_kappa = "fixed"`` holds Q's concentration at ``(2 / span)^2`` (span in radians) and takes
    only the direction of ``m``: the arc laid onto (-1, 1) then pulls on G as a ``uniform:fixed``
    code does (the same curvature at Q's reading), and a code Q reads perfectly is worth a bounded
    number of nats, as theirs is. With ``"learned"`` (the default) a well-read angle is worth ever
    more nats, and can draw every factor that turns (the light too) into itself.
    """

    span: float = 360.0
    q_kappa: str = "learned"
    kind: ClassVar[str] = "angle"
    aliases: ClassVar[tuple[str, ...]] = ("circular",)
    forms: ClassVar[tuple[str, ...]] = ("angle", "angle:SPAN (degrees, 0 < SPAN <= 360)", "angle:SPAN:fixed|learned")
    _RAD: ClassVar[float] = math.pi / 180.0

    def __post_init__(self) -> None:
        if isinstance(self.span, bool) or not isinstance(self.span, (int, float)):
            raise ValueError(f"an angle code's span must be a number of degrees, got {self.span!r}")
        object.__setattr__(self, "span", float(self.span))
        if not (math.isfinite(self.span) and 0 < self.span <= 360):
            raise ValueError(f"an angle code's span must be in (0, 360] degrees, got {self.span}")
        if self.q_kappa not in ("learned", "fixed"):
            raise ValueError(f"q_kappa must be 'learned' or 'fixed', got {self.q_kappa!r}")

    @classmethod
    def from_args(cls, args):
        args, q_kappa = _split_learned_or_fixed(args)
        if len(args) == 0:
            return cls(q_kappa=q_kappa)
        if len(args) != 1:
            raise ValueError("angle takes no arguments or SPAN (degrees), then :fixed or :learned")
        return cls(span=_num(args[0], "SPAN"), q_kappa=q_kappa)

    def to_token(self):
        return f"angle:{self.span!r}" + (":fixed" if self.q_kappa == "fixed" else "")

    @property
    def fixed_kappa(self) -> float:
        """Q's concentration when it is fixed: (2 / span)^2, the span in radians."""
        return (2.0 / (self.span * self._RAD)) ** 2

    @property
    def low(self) -> float:
        return -0.5 * self.span

    @property
    def high(self) -> float:
        return 0.5 * self.span

    @property
    def input_dim(self) -> int:  # type: ignore[override]
        return 2

    @property
    def n_params(self) -> int:  # type: ignore[override]
        return 2

    def sample(self, n, rng=None, device="cpu"):
        return self.span * (torch.rand((n,), generator=rng, device=device) - 0.5)

    def to_input(self, value):
        rad = value.float() * self._RAD
        return torch.stack([torch.cos(rad), torch.sin(rad)], dim=1)

    def entropy(self):
        return math.log(self.span)

    def params(self, raw):
        m = raw[:, :2].float()
        norm = torch.sqrt((m * m).sum(dim=1) + 1e-12)
        mean = torch.atan2(m[:, 1], m[:, 0]) / self._RAD
        if self.q_kappa == "fixed":
            kappa = torch.full_like(norm, self.fixed_kappa)
            m = m * (kappa / norm).unsqueeze(1)  # Q's direction, at the fixed concentration
            return {"m": m, "kappa": kappa, "mean": mean}
        return {"m": m, "kappa": norm, "mean": mean}

    def log_q(self, params, value):
        m, kappa = params["m"].float(), params["kappa"].float()
        rad = value.float() * self._RAD
        dot = m[:, 0] * torch.cos(rad) + m[:, 1] * torch.sin(rad)
        log_i0 = torch.log(torch.special.i0e(kappa)) + kappa  # ln I0(k), stable for large k
        return dot - log_i0 - math.log(2 * math.pi) + math.log(self._RAD)

    def point_estimate(self, params):
        return params["mean"]

    def traversal(self, steps=10, span=None):
        lo, hi = span if span is not None else (self.low, self.high)
        return torch.linspace(lo, hi, steps)


BUILTIN_CODE_TYPES: tuple[type[CodeSpec], ...] = (Categorical, Uniform, Gaussian, Angle)


def builtin_code_types() -> dict[str, type[CodeSpec]]:
    """The built-in code types by kind: what :meth:`CodeSet.parse` knows without a registry."""
    return {cls.kind: cls for cls in BUILTIN_CODE_TYPES}


def _lookup_table(types: Mapping[str, type[CodeSpec]]) -> dict[str, type[CodeSpec]]:
    table: dict[str, type[CodeSpec]] = {}
    for cls in types.values():
        for name in (cls.kind, *cls.aliases):
            table[name.lower()] = cls
    return table


def accepted_forms(types: Mapping[str, type[CodeSpec]] | None = None) -> str:
    types = builtin_code_types() if types is None else types
    forms = [f for cls in types.values() for f in (cls.forms or (cls.kind,))]
    return ", ".join(forms) + "; prefix NAME= to name a code, suffix *N to repeat it"


@dataclass(frozen=True)
class CodeSet:
    """An ordered set of named, independent latent codes."""

    codes: tuple[tuple[str, CodeSpec], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [n for n, _ in self.codes]
        for n in names:
            if not _NAME_RE.match(n):
                raise ValueError(f"code name {n!r} is not an identifier (letters, digits, _)")
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"code names must be unique; repeated: {sorted(dup)}")
        if len(self.codes) > MAX_CODES:
            raise ValueError(f"at most {MAX_CODES} codes, got {len(self.codes)}")

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def of(cls, *specs: CodeSpec, **named: CodeSpec) -> "CodeSet":
        items = [(f"c{i + 1}", s) for i, s in enumerate(specs)] + list(named.items())
        return cls(tuple(items))

    @classmethod
    def parse(cls, text: str, types: Mapping[str, type[CodeSpec]] | None = None) -> "CodeSet":
        """Parse a spec string such as ``"digit=cat:10,uniform*2"``; ``""`` means no codes."""
        if not isinstance(text, str):
            raise ValueError(f"a code spec must be a string, got {type(text).__name__}")
        types = builtin_code_types() if types is None else types
        table = _lookup_table(types)
        text = text.strip()
        if text in ("", "none"):
            return cls(())
        items: list[tuple[str | None, CodeSpec]] = []
        for raw in text.split(","):
            tok = raw.strip()
            try:
                if not tok:
                    raise ValueError("empty entry")
                name = None
                if "=" in tok:
                    name, tok = (s.strip() for s in tok.split("=", 1))
                    if not _NAME_RE.match(name):
                        raise ValueError(f"name {name!r} is not an identifier")
                reps = 1
                if "*" in tok:
                    tok, rep_s = (s.strip() for s in tok.split("*", 1))
                    if not rep_s.isdigit() or not 1 <= int(rep_s) <= MAX_CODES:
                        raise ValueError(f"repeat count must be an integer in 1..{MAX_CODES}")
                    reps = int(rep_s)
                    if name is not None and reps > 1:
                        raise ValueError("a named code cannot be repeated")
                parts = [p.strip() for p in tok.split(":")]
                cls_ = table.get(parts[0].lower())
                if cls_ is None:
                    raise ValueError(f"unknown code type {parts[0]!r}")
                spec = cls_.from_args(parts[1:])
            except ValueError as e:
                raise ValueError(
                    f"bad code spec {raw.strip()!r} in {text!r}: {e}. Accepted forms: {accepted_forms(types)}"
                ) from None
            items.extend([(name, spec)] * reps)
        if len(items) > MAX_CODES:
            raise ValueError(f"bad code spec {text!r}: at most {MAX_CODES} codes, got {len(items)}")
        taken = {n for n, _ in items if n is not None}
        out: list[tuple[str, CodeSpec]] = []
        i = 0
        for name, spec in items:
            if name is None:
                i += 1
                while f"c{i}" in taken:
                    i += 1
                name = f"c{i}"
            else:
                i += 1
            out.append((name, spec))
        try:
            return cls(tuple(out))
        except ValueError as e:
            raise ValueError(f"bad code spec {text!r}: {e}") from None

    def to_spec(self) -> str:
        """The canonical spec string; ``CodeSet.parse(cs.to_spec()) == cs``."""
        return ",".join(f"{n}={s.to_token()}" for n, s in self.codes)

    def to_json(self) -> str:
        return json.dumps([{"name": n, **s.to_json()} for n, s in self.codes], sort_keys=True)

    @classmethod
    def from_json(cls, text: str | list, types: Mapping[str, type[CodeSpec]] | None = None) -> "CodeSet":
        types = builtin_code_types() if types is None else types
        table = _lookup_table(types)
        data = json.loads(text) if isinstance(text, str) else text
        if not isinstance(data, list):
            raise ValueError("a code set's JSON must be a list of objects")
        out = []
        for d in data:
            if not isinstance(d, dict) or "name" not in d or "type" not in d:
                raise ValueError(f"each code needs 'name' and 'type', got {d!r}")
            cls_ = table.get(str(d["type"]).lower())
            if cls_ is None:
                raise ValueError(f"unknown code type {d['type']!r}; installed: {sorted(types)}")
            try:
                out.append((d["name"], cls_.from_json({k: v for k, v in d.items() if k != "name"})))
            except TypeError as e:
                raise ValueError(f"bad fields for code {d['name']!r}: {e}") from None
        return cls(tuple(out))

    # -- container behaviour -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.codes)

    def __iter__(self) -> Iterator[tuple[str, CodeSpec]]:
        return iter(self.codes)

    def __getitem__(self, name: str) -> CodeSpec:
        for n, s in self.codes:
            if n == name:
                return s
        raise KeyError(f"no code named {name!r}; codes: {', '.join(self.names) or '(none)'}")

    def __contains__(self, name: object) -> bool:
        return any(n == name for n, _ in self.codes)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.codes]

    @property
    def continuous(self) -> list[str]:
        """The names of the continuous codes, in order."""
        return [n for n, s in self.codes if not s.discrete]

    @property
    def input_dim(self) -> int:
        return sum(s.input_dim for _, s in self.codes)

    @property
    def n_params(self) -> int:
        return sum(s.n_params for _, s in self.codes)

    def entropy(self) -> dict[str, float]:
        return {n: s.entropy() for n, s in self.codes}

    # -- tensors -----------------------------------------------------------------------------
    def sample(self, n: int, rng: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        return {name: s.sample(n, rng, device) for name, s in self.codes}

    def to_input(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate the codes' generator-input blocks into ``(n, input_dim)``."""
        if not self.codes:
            raise ValueError("an empty code set has no generator input")
        return torch.cat([s.to_input(values[n]) for n, s in self.codes], dim=1)

    def split_params(self, raw: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """Split a Q output ``(n, n_params)`` into each code's named distribution parameters."""
        if raw.shape[-1] != self.n_params:
            raise ValueError(f"Q output has {raw.shape[-1]} columns, the code set needs {self.n_params}")
        out, i = {}, 0
        for name, s in self.codes:
            out[name] = s.params(raw[:, i:i + s.n_params])
            i += s.n_params
        return out

    def log_q(self, params: Mapping[str, Mapping[str, torch.Tensor]],
              values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {n: s.log_q(params[n], values[n]) for n, s in self.codes}

    def point_estimates(self, params: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return {n: s.point_estimate(params[n]) for n, s in self.codes}
