#!/usr/bin/env python3
"""The layout rules of docs/architecture.md, checked: no function in src/ or kernels/ longer than
80 lines and no file longer than 600 (in src/, kernels/ and python/src/), except where the file's opening comment says why with a line
`layout: long <function-name|file> because ...`. A tokenizer-light scan: comments and string
literals are blanked, then every brace block that opens right after a `)` (a function body, or a
lambda's) at namespace or class level is measured from its signature line to its closing brace.

    scripts/check_layout.py [ROOT]       exit 1 and one line per violation, else a summary line
"""
import pathlib
import re
import sys

MAX_FUNCTION, MAX_FILE = 80, 600
SOURCES = ("src", "kernels", "python/src")
SUFFIXES = {".cpp", ".cu", ".cuh", ".hpp"}


def blank_comments_and_strings(text):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c); i = j + 1
        else:
            out.append(c); i += 1
    return "".join(out)


def functions(text):
    """(name, first_line, length) of each outermost function body."""
    code = blank_comments_and_strings(text)
    found, stack = [], []  # stack of (is_function, start_line, name)
    line = 1
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            inside_function = any(f for f, _, _ in stack)
            head = code[max(0, i - 400):i]
            m = re.search(r"\)\s*(const\s*)?(noexcept\s*)?(override\s*)?(final\s*)?(->\s*[\w:<>,\s*&]+)?\s*$", head)
            is_fn = bool(m) and not inside_function and not re.search(r"\b(if|for|while|switch|catch)\s*\([^()]*(\([^()]*\)[^()]*)*\)\s*$", head)
            name, start = "?", line
            if is_fn:
                sig = head[:m.start()]
                depth, j = 0, len(sig)  # walk back over the parameter list to the name
                for j in range(len(sig) - 1, -1, -1):
                    if sig[j] == ")": depth += 1
                    elif sig[j] == "(":
                        if depth == 0: break
                        depth -= 1
                nm = re.search(r"([~\w:]+)\s*$", sig[:j])
                name = nm.group(1) if nm else "?"
                start = line - sig[j:].count("\n") - head[m.start():].count("\n")
            stack.append((is_fn, start, name))
        elif c == "}" and stack:
            is_fn, start, name = stack.pop()
            if is_fn:
                found.append((name, start, line - start + 1))
    return found


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    problems, nfiles, nfuncs = [], 0, 0
    for d in SOURCES:
        for path in sorted((root / d).rglob("*")):
            if path.suffix not in SUFFIXES:
                continue
            text = path.read_text()
            nfiles += 1
            allowed = set(re.findall(r"layout: long (\S+) because", text))
            rel = path.relative_to(root)
            lines = text.count("\n")
            if lines > MAX_FILE and "file" not in allowed:
                problems.append(f"{rel}: {lines} lines (at most {MAX_FILE})")
            for name, start, length in functions(text):
                nfuncs += 1
                if length > MAX_FUNCTION and name not in allowed and name.split("::")[-1] not in allowed:
                    problems.append(f"{rel}:{start}: {name} is {length} lines (at most {MAX_FUNCTION})")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"layout: {nfiles} files, {nfuncs} functions within {MAX_FILE} / {MAX_FUNCTION} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
