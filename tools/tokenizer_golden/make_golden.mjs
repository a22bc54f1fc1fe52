// Encodes a case set with @lenml/tokenizers (an independent JavaScript port of Hugging Face
// tokenizers) and writes the golden JSON the C++ tests compare against.
//   node make_golden.mjs TOKENIZER_DIR CASES OUT.json
// TOKENIZER_DIR holds tokenizer.json and tokenizer_config.json. CASES is "builtin" (cases.mjs) or
// a text file whose non-empty lines (and the whole file) become the cases.
import { TokenizerLoader } from "@lenml/tokenizers";
import fs from "node:fs";
import { cases as builtin } from "./cases.mjs";

const [dir, casesArg, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node make_golden.mjs TOKENIZER_DIR builtin|TEXT_FILE OUT.json");
  process.exit(2);
}
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(`${dir}/tokenizer.json`, "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(`${dir}/tokenizer_config.json`, "utf8")),
});

let cases = builtin;
if (casesArg !== "builtin") {
  const text = fs.readFileSync(casesArg, "utf8");
  cases = text.split("\n").filter((l) => l.length > 0).map((l, i) => [`line_${i}`, l]);
  cases.push(["whole_file", text]);
}

const result = cases.map(([name, text]) => {
  const ids = tok.encode(text, { add_special_tokens: false });
  const decoded = ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: false });
  return { name, text, ids, decoded };
});
fs.writeFileSync(out, JSON.stringify({ generator: "@lenml/tokenizers@3.7.2", cases: result }, null, 1) + "\n");
console.log(`wrote ${result.length} cases to ${out}`);
