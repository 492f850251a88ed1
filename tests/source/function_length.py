#!/usr/bin/env python3
"""app/ stays thin: no function defined at namespace scope in app/*.cpp is
longer than 80 lines (its signature to its closing brace, both at column 0,
as clang-format lays them out). Prints each one over and fails, else the
longest. usage: function_length.py SOURCE_DIR"""
import pathlib
import re
import sys

LIMIT = 80
src = pathlib.Path(sys.argv[1])
signature = re.compile(r"^(?!struct |class |namespace |enum |union |template <)[A-Za-z_].*\)( const)?( noexcept)? \{$")
over, longest = [], (0, "")
for path in sorted((src / "app").glob("*.cpp")):
    lines = path.read_text().splitlines()
    start = None
    for number, line in enumerate(lines, 1):
        if start is None and signature.match(line):
            start, name = number, line
        elif start is not None and line == "}":
            length = number - start + 1
            where = f"{path.relative_to(src)}:{start}: {length} lines: {name}"
            if length > LIMIT:
                over.append(where)
            if length > longest[0]:
                longest = (length, where)
            start = None
for o in over:
    print("over", LIMIT, "lines:", o)
print(f"the longest: {longest[1]}")
print(f"{0 if over else 1} passed, {len(over)} failed")
sys.exit(1 if over else 0)
