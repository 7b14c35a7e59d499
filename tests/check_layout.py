"""`make check-layout`: the dependency rules of CONVENTIONS.md, checked from the source.

- no import circle between app/ modules (imports inside functions count too);
- app/ and views/ never import jobs/, and views/ never name a job to enqueue;
- views/ do not query the database: no db.session reads, select(), .query(), .execute() or text(),
  except in the Flask-AppBuilder datamodels listed in DATAMODELS. Commits and rollbacks that end
  the request's transaction are listed, not refused.
Prints what it finds; exits 1 when a rule is broken."""
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATAMODELS = {"views/counts.py"}  # EstimatingInterface: FAB's SQLAInterface counting a list screen's rows
QUERY = re.compile(r"db\.session\.(?!commit\(\)|rollback\(\))|\bselect\(|\.query\(|\.execute\(|\btext\(")
TRANSACTION = re.compile(r"db\.session\.(commit|rollback)\(\)")
JOBS = re.compile(r"^\s*(from jobs\b|import jobs\b)|[\"']jobs\.")


def app_imports():
    graph = {}
    for path in sorted((ROOT / "app").glob("*.py")):
        name = "app" if path.stem == "__init__" else f"app.{path.stem}"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "app":
                    deps |= {f"app.{alias.name}" for alias in node.names}
                elif node.module.startswith("app."):
                    deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names if alias.name.startswith("app.")}
        graph[name] = deps - {name, "app"}
    return graph


def cycles(graph):
    found = set()

    def walk(node, path):
        for dep in sorted(graph.get(node, ())):
            if dep in path:
                loop = path[path.index(dep):]
                start = loop.index(min(loop))
                found.add(tuple(loop[start:] + loop[:start]))
            else:
                walk(dep, path + [dep])

    for name in graph:
        walk(name, [name])
    return sorted(found)


def grep(folder, pattern, skip=()):
    hits = []
    for path in sorted((ROOT / folder).glob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in skip:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith("#"):
                hits.append(f"{rel}:{number}: {line.strip()}")
    return hits


def main():
    problems = {
        "import circles in app/": [" -> ".join(loop + (loop[0],)) for loop in cycles(app_imports())],
        "app/ or views/ reaching into jobs/": grep("app", re.compile(r"^\s*(from jobs\b|import jobs\b)"))
        + grep("views", JOBS),
        "views/ querying the database": grep("views", QUERY, skip=DATAMODELS),
    }
    for title, hits in problems.items():
        print(f"{title}: {len(hits) or 'none'}")
        for hit in hits:
            print(f"  {hit}")
    ends = grep("views", TRANSACTION)
    print(f"views/ ending a transaction after an app/ call (allowed): {len(ends)}")
    return 1 if any(problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
