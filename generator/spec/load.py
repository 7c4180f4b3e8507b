"""Load one spec file: parse its YAML safely, validate every field, build a Spec.

Specs are untrusted. The YAML is read only as parser events (ruamel.yaml's pure
parser): nothing is ever constructed from tags, and anchors, aliases, tags and
directives are refused. Plain scalars are typed by the YAML 1.2 core schema
(`_PLAIN` below, so `1e-4` is a number and `yes` is text), and numbers become
exact Fractions built from the text the author wrote.

Every problem is collected with its line, and one SpecError reports them all.
Only failures after which nothing sensible can be read (unreadable or oversized
file, invalid UTF-8, YAML syntax error, anchor or alias, runaway nesting) stop
at once.
"""

from __future__ import annotations

import keyword
import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import NoReturn, Union

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
)
from ruamel.yaml.reader import ReaderError

from ..errors import Problem, SpecError, shown
from .files import MAX_BYTES, NPY_NAME, NpyError, read_npy, read_spec
from . import python
from .model import Array, Call, Evaluate, Input, Spec, Step, exact, repeated
from .seeded import Generator, SeededError
from .numbers import (
    DTYPES, FLAVORS, LANGS, MAX_DIMS, MAX_ELEMENTS, MAX_INT_DIGITS, NAME, RESERVED, ACTIVE_TEX as _ACTIVE_TEX,
    PLAIN_TEXT as _PLAIN_TEXT, clip as _clip, decimal as _decimal, integer as _integer,
)

MAX_DEPTH = 16  # deepest nesting of lists and mappings (a valid spec needs 8)

TOP_KEYS = ("title", "summary", "inputs", "steps", "backward", "code", "dtype", "lang", "flavor", "seed")
TOP_REQUIRED = ("title", "inputs", "steps", "backward")
INPUT_KEYS = ("value", "fill", "shape", "randn", "rand", "file", "requires_grad", "dtype")
INPUT_DTYPES = ("int64",)  # an input's own dtype: integers for indices and class targets (floats take the spec's dtype)
DRAWS = ("randn", "rand")  # inputs drawn as torch draws them after torch.manual_seed(seed)
MAX_SEED = 2**63 - 1
CALL_KEYS = ("output", "gradient")

# YAML 1.2 core schema for plain scalars; anything else plain is a string.
_PLAIN = (
    ("null", re.compile(r"~|null|Null|NULL|")),
    ("bool", re.compile(r"true|True|TRUE|false|False|FALSE")),
    ("int", re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")),
    ("float", re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")),
    ("nonfinite", re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")),
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")

# The "(allowed: ...)" ends of messages used in several places.
_NO_REFS = "allowed: plain YAML without anchors or aliases"
_NUMBER = "allowed: an integer or decimal, like 3, -0.5 or 1e-4"
_TENSOR = "allowed: a number, or non-empty nested lists of numbers like [[1, 2], [3, 4]]"
_RAGGED = "allowed: rectangular nested lists"
_SHAPE = "allowed: a list of positive integers like [2, 3], or [] for a single number"
_SOURCE = "allowed: value, fill with shape, randn, rand or file"
_SEED = f"allowed: an integer from 0 to {MAX_SEED}, as torch.manual_seed(seed) takes"
_NAME_FORM = "allowed: a letter, then up to 31 letters, digits or underscores"
_CALL = "allowed: a step or input name, or a mapping with output and optional gradient"
_PRINTABLE = "allowed: printable characters, spaces (also no-break, thin, ideographic), tabs and newlines"
_CODE_CHARS = "allowed: printable characters, spaces, tabs and newlines"
# Zero-width non-joiner and joiner: Persian, Indic scripts and emoji sequences need them.
_JOINERS = frozenset("\u200c\u200d")


@dataclass
class Scalar:
    """A YAML scalar as written: its text and whether it was plain (unquoted)."""

    line: int
    text: str
    plain: bool
    block: bool = False  # a literal or folded block (| or >): its text starts on the next line


@dataclass
class Seq:
    """A YAML sequence."""

    line: int
    items: list[YamlNode]


@dataclass
class Map:
    """A YAML mapping, every pair kept in order (duplicates included)."""

    line: int
    pairs: list[tuple[YamlNode, YamlNode]]


YamlNode = Union[Scalar, Seq, Map]
Fields = dict[str, tuple[Scalar, YamlNode]]


def load(path: str | Path, *, text: bytes | None = None, evaluate: Evaluate | None = None) -> Spec:
    """Read and validate one spec file; raise SpecError listing every problem.

    evaluate: decides a condition on tensor values (while, if) from what the code computed so far; without it,
    such conditions are refused.
    """
    loader = _Loader(shown(path), evaluate)
    data = loader.read(Path(path)) if text is None else text
    if Path(path).suffix == ".py":
        return python.read(shown(path), data, stem=Path(path).stem, evaluate=evaluate)
    return loader.load(data)


class _Loader:
    """Collect the problems of one spec file while reading it."""

    def __init__(self, path: str, evaluate: Evaluate | None = None):
        self.path = path
        self.evaluate = evaluate
        self.problems: list[Problem] = []
        self.names: dict[str, int] = {}  # input and step names -> line

    # -- reporting -------------------------------------------------------

    def bad(self, line: int | None, where: str, what: str, allowed: str = "") -> None:
        """Record one problem: `where: what (allowed)`."""
        message = f"{where}: {what}" if where else what
        if allowed:
            message += f" ({allowed})"
        self.problems.append(Problem(self.path, line, message))

    def fatal(self, line: int | None, what: str, allowed: str = "") -> NoReturn:
        """Record one problem and stop reading."""
        self.bad(line, "", what, allowed)
        raise self.error() from None

    def error(self) -> SpecError:
        """Return the SpecError for every problem so far, by line."""
        return SpecError(sorted(self.problems, key=lambda p: p.line or 0))

    # -- bytes -----------------------------------------------------------

    def read(self, path: Path) -> bytes:
        """Return the file's bytes, reading at most one byte past the limit (see files.read_spec)."""
        return read_spec(path)

    def decode(self, data: bytes) -> str:
        """Return the text of a file that is small enough and valid UTF-8."""
        if len(data) > MAX_BYTES:
            self.fatal(
                None,
                f"file too large: more than {MAX_BYTES} bytes",
                f"allowed: at most {MAX_BYTES} bytes",
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data.count(b"\n", 0, error.start) + 1
            byte = data[error.start]
            self.fatal(
                line,
                f"invalid UTF-8: byte 0x{byte:02x} at offset {error.start}",
                "allowed: UTF-8 text",
            )
        return text.removeprefix("\ufeff")

    def load(self, data: bytes) -> Spec:
        """Validate a whole file and return its Spec."""
        text = self.decode(data)
        root = self.tree(text)
        if root is None:
            self.fatal(None, "file is empty", "allowed: a mapping with " + ", ".join(TOP_REQUIRED))
        spec = self.spec(root)
        if self.problems:
            raise self.error()
        assert spec is not None
        return spec

    # -- YAML ------------------------------------------------------------

    def events(self, text: str) -> Iterator[Event]:
        """Yield the parser events of text, turning any parser failure into a problem."""
        events = YAML(typ="safe", pure=True).parse(text)
        while True:
            try:
                event = next(events)
            except StopIteration:
                return
            except MarkedYAMLError as error:
                mark = error.problem_mark or error.context_mark
                reason = error.problem or error.context or "syntax error"
                self.fatal(mark.line + 1 if mark else None, f"invalid YAML: {_first_line(reason)}")
            except ReaderError as error:
                line = text.count("\n", 0, error.position) + 1
                self.fatal(
                    line,
                    f"invalid character U+{error.character:04X}",
                    "allowed: printable Unicode text",
                )
            except Exception as error:  # ruamel also raises bare errors, e.g. on `%YAML 1.3`
                self.fatal(None, f"invalid YAML: {_first_line(str(error)) or type(error).__name__}")
            yield event

    def tree(self, text: str) -> YamlNode | None:
        """Return the first document of text as a tree of nodes, or None if there is none."""
        done: list[YamlNode] = []
        open_: list[tuple[CollectionStartEvent, list[YamlNode]]] = []
        documents = 0
        for event in self.events(text):
            line = event.start_mark.line + 1
            parent = open_[-1][1] if open_ else done
            if isinstance(event, DocumentStartEvent):
                documents += 1
                if not self.check_document(event, line, documents):
                    break
            elif isinstance(event, (AliasEvent, ScalarEvent, CollectionStartEvent)):
                self.check_properties(event, line)
                if isinstance(event, ScalarEvent):
                    parent.append(Scalar(line, event.value, event.style is None, event.style in ("|", ">")))
                else:
                    self.check_depth(len(open_) + 1, line)
                    open_.append((event, []))
            elif isinstance(event, CollectionEndEvent):
                start, children = open_.pop()
                (open_[-1][1] if open_ else done).append(_collection(start, children))
        return done[0] if done else None

    def check_document(self, event: DocumentStartEvent, line: int, count: int) -> bool:
        """Report directives or a second document; return whether to read on."""
        if count > 1:
            self.bad(line, "", "more than one YAML document", "allowed: exactly one document")
            return False
        if event.version or event.tags:
            self.bad(line, "", "YAML directive (%YAML or %TAG) is not supported", "allowed: none")
        return True

    def check_properties(self, event: NodeEvent, line: int) -> None:
        """Refuse an alias or anchor (at once) or an explicit tag (recorded)."""
        if isinstance(event, AliasEvent):
            self.fatal(line, f"alias {'*' + event.anchor!r} is not supported", _NO_REFS)
        if event.anchor is not None:
            self.fatal(line, f"anchor {'&' + event.anchor!r} is not supported", _NO_REFS)
        tag = getattr(event, "ctag", None)
        if tag is not None:
            self.bad(line, "", f"tag {_tag(tag)!r} is not supported", "allowed: untagged values")

    def check_depth(self, depth: int, line: int) -> None:
        """Stop at runaway nesting, before the parser's cost grows with it."""
        if depth > MAX_DEPTH:
            self.fatal(line, "lists and mappings nested too deeply", f"allowed: at most {MAX_DEPTH} levels")

    # -- mappings --------------------------------------------------------

    def fields(
        self,
        node: YamlNode,
        where: str,
        *,
        keys: tuple[str, ...],
        required: tuple[str, ...] = (),
    ) -> Fields | None:
        """Return the known keys of a mapping, reporting unknown, missing and duplicate ones."""
        if not isinstance(node, Map):
            allowed = "allowed keys: " + ", ".join(keys)
            self.bad(node.line, where, f"expected a mapping, got {_show(node)}", allowed)
            return None
        entries = self.entries(node, where)
        for name, (key, _) in entries.items():
            if name not in keys:
                self.bad(key.line, _join(where, name), "unknown key", "allowed: " + ", ".join(keys))
        missing = [name for name in required if name not in entries]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            what = f"missing required key{plural} " + ", ".join(map(repr, missing))
            self.bad(node.line, where, what, "required: " + ", ".join(required))
        return {name: entry for name, entry in entries.items() if name in keys}

    def entries(self, node: Map, where: str) -> Fields:
        """Return a mapping's pairs by key text, reporting duplicate and non-scalar keys."""
        entries: Fields = {}
        for key, value in node.pairs:
            if not isinstance(key, Scalar):
                self.bad(key.line, where, f"expected a plain key, got {_show(key)}", "allowed: text keys")
            elif key.text in entries:
                what = f"duplicate key, first on line {entries[key.text][0].line}"
                self.bad(key.line, _join(where, key.text), what, "allowed: each key once")
            else:
                entries[key.text] = (key, value)
        return entries

    def named(self, node: YamlNode, where: str, allowed: str) -> Fields:
        """Return the entries of a non-empty mapping of names, checking each name."""
        if not isinstance(node, Map) or not node.pairs:
            self.bad(node.line, where, f"expected a non-empty mapping, got {_show(node)}", allowed)
            return {}
        entries = self.entries(node, where)
        for name, (key, _) in entries.items():
            self.check_name(name, key.line, where)
        return entries

    def check_name(self, name: str, line: int, where: str) -> None:
        """Report a name that is malformed, a keyword, reserved or already used."""
        shown = _quote(name)
        if not NAME.fullmatch(name):
            self.bad(line, where, f"invalid name {shown}", _NAME_FORM)
        elif keyword.iskeyword(name):
            allowed = "allowed: any name but a Python keyword"
            self.bad(line, where, f"invalid name {shown}, a Python keyword", allowed)
        elif name in RESERVED:
            reserved = ", ".join(sorted(RESERVED, key=str.lower))
            self.bad(line, where, f"invalid name {shown}, reserved", f"allowed: any name but {reserved}")
        if name in self.names:
            what = f"duplicate name {shown}, first on line {self.names[name]}"
            self.bad(line, where, what, "allowed: each name once across inputs and steps")
        else:
            self.names[name] = line

    # -- the spec --------------------------------------------------------

    def spec(self, root: YamlNode) -> Spec | None:
        """Validate the top-level mapping and return its Spec (None if it has problems)."""
        if not isinstance(root, Map):  # name only its kind: a file that is no spec may hold anything
            allowed = "allowed keys: " + ", ".join(TOP_KEYS)
            self.fatal(root.line, f"expected a mapping, got {_kind_word(root)}", allowed)
        keys = [key.text for key, _ in root.pairs if isinstance(key, Scalar)]
        if root.pairs and not set(keys) & set(TOP_KEYS):  # no spec key: quote none of its keys
            self.fatal(root.line, "not a derive spec: none of its keys is a spec key",
                       "allowed keys: " + ", ".join(TOP_KEYS))
        code = next((value for key, value in root.pairs if isinstance(key, Scalar) and key.text == "code"), None)
        required = ("title",) if code is not None else TOP_REQUIRED
        top = self.fields(root, "", keys=TOP_KEYS, required=required)
        if top is None:
            return None
        if code is not None:
            return self.with_code(top)
        title = self.text_field(top.get("title"), "title", empty=False)
        summary = self.text_field(top.get("summary"), "summary", empty=True)
        inputs = self.inputs(top["inputs"][1]) if "inputs" in top else ()
        steps = self.steps(top["steps"][1]) if "steps" in top else ()
        backward = self.backward(top["backward"][1]) if "backward" in top else ()
        dtype = self.choice(top.get("dtype"), "dtype", "a dtype", DTYPES)
        lang = self.choice(top.get("lang"), "lang", "a language code", LANGS)
        flavor = self.choice(top.get("flavor"), "flavor", "a Markdown flavor", FLAVORS)
        seed = self.seed(top.get("seed"))
        if self.problems:
            return None
        inputs = self.draw(inputs, seed, dtype or "float32", top.get("seed"))
        if self.problems:
            return None
        return Spec(self.path, title or "", summary or "", inputs, steps, backward, dtype, lang, flavor, seed=seed)

    def seed(self, entry: tuple[Scalar, YamlNode] | None) -> int | None:
        """Return the spec's seed for torch.manual_seed, if any."""
        if entry is None:
            return None
        node = entry[1]
        number = self.number(node, "seed") if _kind(node) == "int" else None
        if number is None or not 0 <= number <= MAX_SEED:
            if _kind(node) != "int" or number is not None:
                self.bad(node.line, "seed", f"expected a seed, got {_show(node)}", _SEED)
            return None
        return int(number)

    def draw(self, inputs: tuple[Input, ...], seed: int | None, dtype: str,
             entry: tuple[Scalar, YamlNode] | None) -> tuple[Input, ...]:
        """Fill the randn and rand inputs, in order, with torch's numbers after torch.manual_seed(seed)."""
        drawn = [i for i in inputs if i.drawn]
        if not drawn:
            return inputs
        if seed is None:
            self.bad(drawn[0].line, _join("inputs", drawn[0].name), f"{drawn[0].drawn} needs the spec's seed",
                     "allowed: seed: an integer at the top of the spec, as torch.manual_seed(seed) before the inputs")
            return inputs
        generator, out = Generator(seed), []
        for item in inputs:
            if item.drawn:
                count = math.prod(item.value.shape)
                try:
                    numbers = getattr(generator, item.drawn)(count, dtype)
                except SeededError as error:
                    self.bad(item.line, f"{_join('inputs', item.name)}.{item.drawn}", str(error),
                             f"allowed: {error.allowed}".replace("dtype=torch.float64", "dtype: float64"))
                    return inputs
                item = replace(item, value=Array(item.value.shape, exact(numbers)))
            out.append(item)
        return tuple(out)

    def with_code(self, top: Fields) -> Spec | None:
        """Return a spec whose computation is a `code:` block of torch code: its inputs, if any, are bound first."""
        for key in ("steps", "backward"):
            if key in top:
                self.bad(top[key][0].line, key, "not allowed together with code", "allowed: code, or steps and backward")
        title = self.text_field(top.get("title"), "title", empty=False)
        summary = self.text_field(top.get("summary"), "summary", empty=True)
        inputs = self.inputs(top["inputs"][1]) if "inputs" in top else ()
        dtype = self.choice(top.get("dtype"), "dtype", "a dtype", DTYPES)
        lang = self.choice(top.get("lang"), "lang", "a language code", LANGS)
        flavor = self.choice(top.get("flavor"), "flavor", "a Markdown flavor", FLAVORS)
        for key, line in [("seed", top["seed"][0].line)] if "seed" in top else []:
            self.bad(line, key, "not allowed together with code", "allowed: steps and backward with seed")
        for item in inputs:
            if item.drawn:
                self.bad(item.line, _join("inputs", item.name), f"{item.drawn} not allowed together with code",
                         "allowed: value, or fill with shape")
        node = top["code"][1]
        if not (_kind(node) == "str" and node.text.strip()):
            self.bad(node.line, "code", f"expected torch code, got {_show(node)}", "allowed: a block of Python, code: |")
        if self.problems:
            return None
        assert isinstance(node, Scalar)
        settings = Spec(self.path, title or "", summary or "", inputs, (), (), dtype, lang, flavor)
        first = node.line + 1 if node.block else node.line
        try:
            return python.code(self.path, node.text, stem="", first_line=first, settings=settings, evaluate=self.evaluate)
        except SpecError as error:
            self.problems.extend(error.problems)
            return None

    def text_field(self, entry: tuple[Scalar, YamlNode] | None, where: str, *, empty: bool) -> str | None:
        """Return a plain-text field, stripped."""
        if entry is None:
            return None
        node = entry[1]
        if _kind(node) == "str" and (empty or node.text.strip()):
            return self.printable(node, where, prose=True)
        allowed = "allowed: a string" if empty else "allowed: a non-empty string"
        self.bad(node.line, where, f"expected text, got {_show(node)}", allowed)
        return None

    def printable(self, node: Scalar, where: str, *, prose: bool) -> str | None:
        """Return node's text stripped, unless it hides control, format or surrogate characters.

        Prose (a title or summary) may also hold any Unicode space and the joiners, but no TeX macro
        that makes a link, style or HTML; code (a step) only ASCII white space.
        """
        shows = _shows if prose else _shows_in_code
        odd = next((char for char in node.text if not shows(char)), None)
        if odd is not None:
            self.bad(node.line, where, f"invalid character U+{ord(odd):04X}", _PRINTABLE if prose else _CODE_CHARS)
            return None
        active = _ACTIVE_TEX.search(node.text) if prose else None
        if active:
            self.bad(node.line, where, f"TeX macro {active.group()} in text", _PLAIN_TEXT)
            return None
        return node.text.strip()

    def choice(
        self, entry: tuple[Scalar, YamlNode] | None, where: str, what: str, choices: tuple[str, ...]
    ) -> str:
        """Return one of choices (the first when absent)."""
        if entry is None:
            return choices[0]
        node = entry[1]
        if _kind(node) == "str" and node.text in choices:
            return node.text
        self.bad(node.line, where, f"expected {what}, got {_show(node)}", "allowed: " + ", ".join(choices))
        return choices[0]

    def inputs(self, node: YamlNode) -> tuple[Input, ...]:
        """Return the leaf tensors."""
        entries = self.named(node, "inputs", "allowed: input names, each with value, or fill and shape")
        found = (self.input(name, key, value) for name, (key, value) in entries.items())
        return tuple(item for item in found if item is not None)

    def input(self, name: str, key: Scalar, node: YamlNode) -> Input | None:
        """Return one leaf tensor."""
        where = _join("inputs", name)
        fields = self.fields(node, where, keys=INPUT_KEYS)
        if fields is None:
            return None
        drawn = [k for k in DRAWS if k in fields]
        if drawn:
            for extra in ("value", "fill", "shape", *drawn[1:]):
                if extra in fields:
                    self.bad(fields[extra][0].line, f"{where}.{extra}", f"not allowed together with {drawn[0]}", _SOURCE)
            dims = self.shape(fields[drawn[0]][1], f"{where}.{drawn[0]}")
            array = None if dims is None else Array(dims, ())
        elif "file" in fields:
            for extra in ("value", "fill", "shape"):
                if extra in fields:
                    self.bad(fields[extra][0].line, f"{where}.{extra}", "not allowed together with file", _SOURCE)
            array = self.file(fields["file"][1], f"{where}.file")
        else:
            array = self.source(fields, where, key.line)
        requires_grad = self.flag(fields.get("requires_grad"), f"{where}.requires_grad")
        integer = self.integer(fields, where, array, requires_grad, drawn)
        if array is None or requires_grad is None or integer is None:
            return None
        return Input(name, array, requires_grad, key.line, drawn=drawn[0] if drawn else "",
                     file=fields["file"][1].text if "file" in fields else "", integer=integer)

    def integer(self, fields: Fields, where: str, array: Array | None, requires_grad: bool | None,
                drawn: list[str]) -> bool | None:
        """Return whether an input is int64 (dtype: int64), checking what torch requires of one; None on a problem."""
        if "dtype" not in fields:
            return False
        key, node = fields["dtype"]
        if self.choice((key, node), f"{where}.dtype", "a dtype", INPUT_DTYPES) is None:
            return None
        ok = True
        for extra in ("file", *drawn):
            if extra in fields:
                self.bad(fields[extra][0].line, f"{where}.{extra}", "not allowed together with dtype: int64",
                         "allowed: value, or fill and shape, of integers")
                ok = False
        if requires_grad:
            self.bad(fields["requires_grad"][0].line, f"{where}.requires_grad",
                     "an int64 tensor cannot require grad (torch: only tensors of floating point dtype can)",
                     "allowed: false")
            ok = False
        if array is not None and any(v.denominator != 1 or abs(v) >= 2**53 for v in array.values):
            self.bad(key.line, f"{where}.value", "an int64 tensor holds integers",
                     "allowed: whole numbers below 2**53 in size")
            ok = False
        return True if ok else None

    def file(self, node: YamlNode, where: str) -> Array | None:
        """Return an input's tensor from a .npy file beside the spec, read as untrusted (spec/files.py)."""
        allowed = "allowed: the name of a .npy file beside the spec, such as x.npy"
        if _kind(node) != "str" or not re.fullmatch(NPY_NAME, node.text):
            self.bad(node.line, where, f"expected a file name, got {_show(node)}", allowed)
            return None
        try:
            values = read_npy(Path(self.path).parent / node.text, max_elements=MAX_ELEMENTS)
        except NpyError as error:
            self.bad(node.line, where, f"{node.text} {error}")
            return None
        return Array(tuple(int(n) for n in values.shape), exact(values.reshape(-1)))

    def source(self, fields: Fields, where: str, line: int) -> Array | None:
        """Return an input's tensor from `value`, or from `fill` with `shape`."""
        value, fill, shape = (fields.get(key) for key in ("value", "fill", "shape"))
        if value is not None:
            for extra in ("fill", "shape"):
                if extra in fields:
                    key = fields[extra][0]
                    self.bad(key.line, f"{where}.{extra}", "not allowed together with value", _SOURCE)
            return self.array(value[1], f"{where}.value")
        if fill is None and shape is None:
            self.bad(line, where, "missing value", _SOURCE)
            return None
        if shape is None:
            self.bad(line, where, "missing shape, needed with fill", _SOURCE)
        if fill is None:
            self.bad(line, where, "missing fill, needed with shape", _SOURCE)
        number = self.number(fill[1], f"{where}.fill") if fill else None
        dims = self.shape(shape[1], f"{where}.shape") if shape else None
        if number is None or dims is None:
            return None
        return Array(dims, repeated(number, math.prod(dims)))

    def flag(self, entry: tuple[Scalar, YamlNode] | None, where: str) -> bool | None:
        """Return a boolean field (False when absent)."""
        if entry is None:
            return False
        node = entry[1]
        if _kind(node) == "bool":
            return node.text.lower() == "true"
        self.bad(node.line, where, f"expected true or false, got {_show(node)}", "allowed: true, false")
        return None

    def steps(self, node: YamlNode) -> tuple[Step, ...]:
        """Return the steps: name -> expression, in order."""
        entries = self.named(node, "steps", "allowed: step names, each with an expression")
        found = (self.step(name, key, value) for name, (key, value) in entries.items())
        return tuple(item for item in found if item is not None)

    def step(self, name: str, key: Scalar, node: YamlNode) -> Step | None:
        """Return one step; its expression is only checked to be non-empty text."""
        if _kind(node) == "str" and node.text.strip():
            expr = self.printable(node, _join("steps", name), prose=False)
            return None if expr is None else Step(name, expr, key.line)
        allowed = "allowed: a non-empty string of torch code, like x * 2"
        self.bad(node.line, _join("steps", name), f"expected an expression, got {_show(node)}", allowed)
        return None

    def backward(self, node: YamlNode) -> tuple[Call, ...]:
        """Return the backward calls: one name or mapping, or a list of them."""
        if not isinstance(node, Seq):
            call = self.call(node, "backward")
            return () if call is None else (call,)
        if not node.items:
            allowed = _CALL + ", or a non-empty list of these"
            self.bad(node.line, "backward", "expected a non-empty list, got an empty list", allowed)
        found = (self.call(item, f"backward[{index}]") for index, item in enumerate(node.items))
        return tuple(call for call in found if call is not None)

    def call(self, node: YamlNode, where: str) -> Call | None:
        """Return one backward call."""
        if isinstance(node, Seq):
            self.bad(node.line, where, "expected a name or a mapping, got a list", _CALL)
            return None
        if isinstance(node, Scalar):
            output = self.reference(node, where)
            return None if output is None else Call(output, None, node.line)
        fields = self.fields(node, where, keys=CALL_KEYS, required=("output",))
        if fields is None:
            return None
        target, gradient = fields.get("output"), fields.get("gradient")
        output = self.reference(target[1], f"{where}.output") if target else None
        array = self.gradient(gradient[1], f"{where}.gradient") if gradient else None
        if target is None or output is None or (gradient and array is None):
            return None
        return Call(output, array, target[1].line)

    def gradient(self, node: YamlNode, where: str) -> Array | None:
        """Return a call's gradient: nested lists, or a mapping with fill and shape (for large outputs)."""
        if not isinstance(node, Map):
            return self.array(node, where)
        fields = self.fields(node, where, keys=("fill", "shape"), required=("fill", "shape"))
        return None if fields is None or len(fields) < 2 else self.source(fields, where, node.line)

    def reference(self, node: YamlNode, where: str) -> str | None:
        """Return the name of an existing input or step."""
        known = _listing([name for name in self.names if NAME.fullmatch(name)])
        if _kind(node) != "str":
            what = f"expected a step or input name, got {_show(node)}"
            self.bad(node.line, where, what, f"allowed: {known}")
            return None
        assert isinstance(node, Scalar)
        if node.text not in self.names:
            self.bad(node.line, where, f"unknown name {_quote(node.text)}", f"allowed: {known}")
            return None
        return node.text

    # -- numbers and tensors ---------------------------------------------

    def array(self, node: YamlNode, where: str) -> Array | None:
        """Return a tensor written as a number or as nested lists."""
        if isinstance(node, Scalar):
            if _kind(node) in ("int", "float", "nonfinite"):
                number = self.number(node, where)
                return None if number is None else Array((), (number,))
        if not isinstance(node, Seq):
            self.bad(node.line, where, f"expected a number or a list, got {_show(node)}", _TENSOR)
            return None
        shape = self.outline(node, where)
        if shape is None:
            return None
        values: list[Fraction | None] = []
        self.flatten(node, shape, where, values)
        if any(value is None for value in values):
            return None
        return Array(shape, tuple(values))  # type: ignore[arg-type]

    def outline(self, node: Seq, where: str) -> tuple[int, ...] | None:
        """Return the shape that the first item at each depth implies, if allowed."""
        shape: list[int] = []
        current: YamlNode = node
        while isinstance(current, Seq):
            if not current.items:
                path = where + "[0]" * len(shape)
                self.bad(current.line, path, "expected a non-empty list, got an empty list", _TENSOR)
                return None
            if len(shape) == MAX_DIMS:
                what = f"too many dimensions: more than {MAX_DIMS}"
                self.bad(node.line, where, what, f"allowed: at most {MAX_DIMS}")
                return None
            shape.append(len(current.items))
            current = current.items[0]
        return self.sized(tuple(shape), node.line, where)

    def sized(self, shape: tuple[int, ...], line: int, where: str) -> tuple[int, ...] | None:
        """Return shape unless it has too many elements."""
        count = math.prod(shape)
        if count > MAX_ELEMENTS:
            self.bad(line, where, f"too many elements: {count}", f"allowed: at most {MAX_ELEMENTS}")
            return None
        return shape

    def flatten(self, node: YamlNode, shape: tuple[int, ...], where: str, out: list[Fraction | None]) -> None:
        """Append node's numbers to out row-major, reporting any that break shape."""
        if not shape:
            if isinstance(node, Seq):
                self.bad(node.line, where, "ragged list, expected a number, got a list", _RAGGED)
                out.append(None)
            else:
                out.append(self.number(node, where))
            return
        if not isinstance(node, Seq):
            what = f"ragged list, expected a list of {shape[0]} items, got {_show(node)}"
            self.bad(node.line, where, what, _RAGGED)
            out.append(None)
            return
        if len(node.items) != shape[0]:
            what = f"ragged list, expected {shape[0]} items, got {len(node.items)}"
            self.bad(node.line, where, what, _RAGGED)
            out.append(None)
            return
        for index, item in enumerate(node.items):
            self.flatten(item, shape[1:], f"{where}[{index}]", out)

    def shape(self, node: YamlNode, where: str) -> tuple[int, ...] | None:
        """Return a `shape`: a list (maybe empty) of positive integers."""
        if not isinstance(node, Seq):
            self.bad(node.line, where, f"expected a list, got {_show(node)}", _SHAPE)
            return None
        if len(node.items) > MAX_DIMS:
            what = f"too many dimensions: {len(node.items)}"
            self.bad(node.line, where, what, f"allowed: at most {MAX_DIMS}")
            return None
        dims = [self.size(item, f"{where}[{index}]") for index, item in enumerate(node.items)]
        if any(size is None for size in dims):
            return None
        return self.sized(tuple(dims), node.line, where)  # type: ignore[arg-type]

    def size(self, node: YamlNode, where: str) -> int | None:
        """Return one positive integer of a shape."""
        if _kind(node) == "int":
            number = self.number(node, where)
            if number is None:
                return None
            if number > 0:
                return int(number)
        self.bad(node.line, where, f"expected a positive integer, got {_show(node)}", _SHAPE)
        return None

    def number(self, node: YamlNode, where: str) -> Fraction | None:
        """Return a finite number exactly as written in decimal."""
        kind = _kind(node)
        if kind == "nonfinite":
            self.bad(node.line, where, f"expected a finite number, got {_show(node)}", _NUMBER)
        elif kind not in ("int", "float"):
            self.bad(node.line, where, f"expected a number, got {_show(node)}", _NUMBER)
        else:
            assert isinstance(node, Scalar)
            number, problem = _integer(node.text) if kind == "int" else _decimal(node.text)
            if number is not None:
                return number
            self.bad(node.line, where, problem[0], problem[1])
        return None


# -- helpers ---------------------------------------------------------------


def _collection(start: CollectionStartEvent, children: list[YamlNode]) -> YamlNode:
    """Return the Map or Seq that start opened, holding children."""
    line = start.start_mark.line + 1
    if isinstance(start, MappingStartEvent):
        return Map(line, list(zip(children[::2], children[1::2])))
    return Seq(line, children)


def _kind(node: YamlNode) -> str:
    """Return the YAML type of node: list, mapping, or a core-schema scalar type."""
    if isinstance(node, Seq):
        return "list"
    if isinstance(node, Map):
        return "mapping"
    if node.plain:
        for kind, pattern in _PLAIN:
            if pattern.fullmatch(node.text):
                return kind
    return "str"


def _show(node: YamlNode) -> str:
    """Return how a message names the value it got."""
    if isinstance(node, Seq):
        return "a list" if node.items else "an empty list"
    if isinstance(node, Map):
        return "a mapping" if node.pairs else "an empty mapping"
    kind = _kind(node)
    if kind == "str":
        return _quote(node.text)
    return "null" if kind == "null" and not node.text else _clip(node.text)


def _kind_word(node: YamlNode) -> str:
    """Return what a node is, without any of its text."""
    if isinstance(node, Scalar):
        kind = _kind(node)
        words = {"null": "null", "bool": "true or false", "int": "a number", "float": "a number", "nonfinite": "a number"}
        return "null" if kind == "null" and not node.text else words.get(kind, "text")
    return _show(node)


def _quote(text: str) -> str:
    """Return text quoted and shortened for a message."""
    return repr(_clip(text))




def _join(where: str, key: str) -> str:
    """Return the path of key inside where: a.b, or a['odd key']."""
    if _IDENT.fullmatch(key):
        return f"{where}.{key}" if where else key
    return f"{where}[{_quote(key)}]"


def _listing(names: list[str], limit: int = 12) -> str:
    """Return names joined for a message, shortened when there are many."""
    if not names:
        return "a step or input name"
    shown = ", ".join(names[:limit])
    return shown + ", ..." if len(names) > limit else shown


def _tag(tag: object) -> str:
    """Return a tag as written: !!str, !foo, or !<uri>."""
    handle, suffix = getattr(tag, "handle", None), getattr(tag, "suffix", None) or ""
    if handle:
        return handle + suffix
    return suffix if suffix.startswith("!") else f"!<{suffix}>"


def _shows(char: str) -> bool:
    """Return whether char may stand in spec text: printable, a space of any width, a tab, newline or joiner.

    Control, bidi override and isolate (U+202A-202E, U+2066-2069), other format, line and paragraph
    separator, surrogate and private-use characters are refused.
    """
    return char.isprintable() or char in " \t\n" or char in _JOINERS or unicodedata.category(char) == "Zs"


def _shows_in_code(char: str) -> bool:
    """Return whether char may stand in a step's code: printable, an ASCII space, a tab or a newline."""
    return char.isprintable() or char in " \t\n"


def _first_line(text: str) -> str:
    """Return the first non-blank line of text, stripped, with unprintable characters escaped."""
    line = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in line)
