"""Lines of code per problem: its PDE class (the physics), the rest of its package (problem
node, reference solver) and its configs. `python -m experiments.count_lines [--root DIR]`.

Counts source lines: blank lines, comments and docstrings are not counted. Run it on another
checkout (`--root`) to compare versions.
"""

import argparse
import ast
import io
import tokenize
from pathlib import Path

from experiments._report import markdown_table


def source_lines(text: str, first: int = 1, last: int | None = None) -> int:
    """Lines between `first` and `last` (1-based, inclusive) that hold code: no blank lines,
    comments or docstrings."""
    tree = ast.parse(text)
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.update(range(value.lineno, value.end_lineno + 1))
    code = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            code.update(range(token.start[0], token.end[0] + 1))
    last = len(text.splitlines()) if last is None else last
    return len({line for line in code - docstrings if first <= line <= last})


def pde_classes(text: str) -> dict[str, tuple[int, int]]:
    """The line span of every class deriving from `AbstractPDE` (directly or by name)."""
    tree = ast.parse(text)
    spans = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
            if "AbstractPDE" in bases:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                spans[node.name] = (first, node.end_lineno)
    return spans


def count(root: Path) -> list[list[object]]:
    rows = []
    for package in sorted(p for p in (root / "problems").iterdir() if p.is_dir()):
        files = sorted(package.glob("*.py"))
        if not files or package.name in ("cutest", "__pycache__"):
            continue
        physics, total = {}, 0
        for file in files:
            text = file.read_text()
            total += source_lines(text)
            for name, (first, last) in pde_classes(text).items():
                physics[name] = source_lines(text, first, last)
        configs = [
            c
            for c in (root / "configs" / "problem").glob("*.yaml")
            if f"problems.{package.name}." in c.read_text()
        ]
        config = sum(
            sum(1 for line in c.read_text().splitlines() if line.split("#")[0].strip())
            for c in configs
        )
        for name, lines in sorted(physics.items()):
            rows.append([package.name, name, lines, total - sum(physics.values()), config])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    header = ["package", "PDE", "physics", "problem + solver (rest of the package)", "configs"]
    print(markdown_table(header, count(args.root)))


if __name__ == "__main__":
    main()
