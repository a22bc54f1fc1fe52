# Differential check of our pre-tokenizer against Oniguruma, the regex engine Hugging Face
# tokenizers compiles Split patterns with (Ruby syntax, UTF-8), called through ctypes.
#   python3 tools/tokenizer_golden/onig_pretokenize_check.py TOKENIZER_DIR [N_RANDOM_CASES]
# Needs libonig5 (Debian) and build/dsv3; run from the repository root. Use a small tokenizer
# with the same patterns (tests/golden/tokenizer/trained): each case starts one dsv3 process.
import ctypes, json, random, subprocess, sys
lib = ctypes.CDLL("libonig.so.5")
class OnigErrorInfo(ctypes.Structure):
    _fields_ = [("enc", ctypes.c_void_p), ("par", ctypes.c_void_p), ("par_end", ctypes.c_void_p)]
class OnigRegion(ctypes.Structure):
    _fields_ = [("allocated", ctypes.c_int), ("num_regs", ctypes.c_int),
                ("beg", ctypes.POINTER(ctypes.c_int)), ("end", ctypes.POINTER(ctypes.c_int)), ("history_root", ctypes.c_void_p)]
enc_addr = ctypes.addressof(ctypes.c_char.in_dll(lib, "OnigEncodingUTF8"))
syntax = ctypes.addressof(ctypes.c_char.in_dll(lib, "OnigSyntaxRuby"))
encs = (ctypes.c_void_p * 1)(enc_addr)
lib.onig_initialize(encs, 1)
lib.onig_new.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(OnigErrorInfo)]
lib.onig_search.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(OnigRegion), ctypes.c_uint]
lib.onig_region_new.restype = ctypes.POINTER(OnigRegion)
tj = json.load(open(sys.argv[1] + "/tokenizer.json"))
regs = []
for st in tj["pre_tokenizer"]["pretokenizers"]:
    if st["type"] != "Split": continue
    pat = st["pattern"]["Regex"].encode()
    reg = ctypes.c_void_p(); ei = OnigErrorInfo()
    buf = ctypes.create_string_buffer(pat)
    r = lib.onig_new(ctypes.byref(reg), buf, ctypes.c_char_p(ctypes.addressof(buf) + len(pat)), 0, enc_addr, syntax, ctypes.byref(ei))
    assert r == 0, r
    regs.append(reg)
region = lib.onig_region_new()
def split(reg, s):
    b = s.encode(); buf = ctypes.create_string_buffer(b); base = ctypes.addressof(buf); n = len(b)
    out = []; pos = 0; prev = 0
    while pos <= n:
        r = lib.onig_search(reg, buf, ctypes.c_char_p(base + n), ctypes.c_char_p(base + pos), ctypes.c_char_p(base + n), region, 0)
        if r < 0: break
        mb, me = region.contents.beg[0], region.contents.end[0]
        if me == mb:
            pos = mb + 1
            continue
        if mb > prev: out.append(b[prev:mb].decode())
        out.append(b[mb:me].decode()); prev = pos = me
    if prev < n: out.append(b[prev:].decode())
    return out
def pretok(s):
    pieces = [s]
    for reg in regs:
        pieces = [q for p in pieces for q in split(reg, p)]
    return pieces
chars = list("aZé中あアー 1٣\t\n\r.,!?'\"-_()") + ["\u0085", "\u180e", "\ufeff", "\u00a0", "\u2003", "\u3000", "\u200b", "\u0301", "😀", "\u2028", "\u000b", "\u000c", "\u001c", "ǅ", "Ⅻ", "²", "\u00ad", "$", "^", "`", "|"]
random.seed(1)
cases = ["a\u0085 b", "a\u180e b", "a\ufeff b", "x \u0085\u0085 y", "1\u0085\n"]
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3000):
    cases.append("".join(random.choice(chars) for _ in range(random.randint(1, 12))))
bad = 0
for c in cases:
    want = pretok(c)
    got = json.loads(subprocess.run(["./build/dsv3", "tokenize", "--tokenizer", sys.argv[1], "--pieces", "--text", c], capture_output=True).stdout) if c and not c.startswith("-") else None
    if got is not None and got != want:
        bad += 1
        if bad < 10: print("DIFF", repr(c), want, got)
print("cases", len(cases), "diffs", bad)
