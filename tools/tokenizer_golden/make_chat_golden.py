"""Renders conversations with the DeepSeek-V3 chat template (Jinja, from tokenizer_config.json)
using jinja2 the way Hugging Face transformers does (sandboxed, trim_blocks, lstrip_blocks), and
writes the golden file for tests/tokenizer/chat_template_test.cpp.
   python3 make_chat_golden.py ../../assets/deepseek-v3-tokenizer/tokenizer_config.json \
       ../../tests/golden/tokenizer/chat_template_cases.json
"""
import json
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment


def call(name, args="{}"):
    return {"type": "function", "function": {"name": name, "arguments": args}}


def m(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = [
    ("empty", []),
    ("user_only", [m("user", "Hi")]),
    ("system_user", [m("system", "Be brief."), m("user", "Hi")]),
    ("three_systems_interleaved", [m("system", "A"), m("user", "u1"), m("system", "B"), m("assistant", "a1"),
                                   m("system", "C"), m("user", "u2")]),
    ("multi_turn", [m("user", "Q1"), m("assistant", "A1"), m("user", "Q2"), m("assistant", "A2"), m("user", "Q3")]),
    ("ends_on_assistant", [m("user", "Q"), m("assistant", "A")]),
    ("newlines_and_unicode", [m("system", "línea\n\ndos"), m("user", "深度求索 🍕\n"), m("assistant", " spaced ")]),
    ("empty_contents", [m("system", ""), m("user", ""), m("assistant", "")]),
    ("one_call", [m("user", "Q"), {"role": "assistant", "content": None, "tool_calls": [call("a")]}, m("tool", "R1")]),
    ("one_call_then_answer", [m("user", "Q"), {"role": "assistant", "content": None, "tool_calls": [call("get", '{"x": 1}')]},
                              m("tool", "R1"), m("assistant", "It is 1."), m("user", "thanks")]),
    ("two_calls", [m("user", "Q"), {"role": "assistant", "content": None, "tool_calls": [call("a"), call("b")]},
                   m("tool", "R1"), m("tool", "R2"), m("assistant", "Done")]),
    ("three_calls", [m("user", "Q"), {"role": "assistant", "content": None,
                                      "tool_calls": [call("a"), call("b"), call("c", '{"k": [1, 2]}')]},
                     m("tool", "R1"), m("tool", "R2"), m("tool", "R3")]),
    ("second_tool_turn", [m("user", "Q"), {"role": "assistant", "content": None, "tool_calls": [call("a")]},
                          m("tool", "R1"), m("assistant", "mid"), m("user", "again"),
                          {"role": "assistant", "content": None, "tool_calls": [call("b")]}, m("tool", "R2"),
                          m("assistant", "end")]),
    ("tool_then_user", [m("user", "Q"), {"role": "assistant", "content": None, "tool_calls": [call("a")]},
                        m("tool", "R1"), m("user", "next")]),
]


def main():
    config = json.load(open(sys.argv[1], encoding="utf-8"))
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(config["chat_template"])
    bos = config["bos_token"]["content"] if isinstance(config["bos_token"], dict) else config["bos_token"]
    cases = []
    for name, messages in CONVERSATIONS:
        for gen in (False, True):
            text = template.render(messages=messages, add_generation_prompt=gen, bos_token=bos)
            cases.append({"name": name, "add_generation_prompt": gen, "messages": messages, "rendered": text})
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump({"generator": "jinja2 " + __import__("jinja2").__version__, "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {sys.argv[2]}")


main()
