"""A real X text field for the dictation tests and benchmark: a Tk window titled ARGV[1]
holding one Entry (``python -m earwig.profiling.harness.tk_field TITLE``). Every change of its text
is printed as ``<monotonic ns>\t<text as JSON>``, so a caller sees what arrived and when
(one monotonic clock for every process on the machine); ``headless.TextField`` reads it."""

import json
import sys
import time
import tkinter

root = tkinter.Tk()
root.title(sys.argv[1])
text = tkinter.StringVar(root)
text.trace_add("write", lambda *_: print(f"{time.monotonic_ns()}\t{json.dumps(text.get())}", flush=True))
entry = tkinter.Entry(root, textvariable=text, width=80)
entry.pack()
entry.focus_set()
root.after(100, lambda: print("ready", flush=True))
root.mainloop()
