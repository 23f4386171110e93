//! The JavaScript a page shows (a consumer of the inbound stream) cannot run here (it needs
//! npm's `redis` package), but it must not call what it never defines: every function it
//! calls by name is defined in the block (`function f`, `const f =`), imported, or one of
//! JavaScript's own. Methods (`client.xAck(...)`) are the library's and not checked.

use std::collections::BTreeSet;

use regex::Regex;

/// Names a block may call without defining them: the language's keywords that take
/// parentheses, and the globals of Node 20.
const BUILT_IN: [&str; 22] = [
    "if",
    "for",
    "while",
    "switch",
    "catch",
    "function",
    "return",
    "typeof",
    "await",
    "async",
    "new",
    "import",
    "String",
    "Number",
    "Boolean",
    "Error",
    "fetch",
    "encodeURIComponent",
    "setTimeout",
    "Promise",
    "JSON",
    "URL",
];

/// The names `source` calls but neither defines nor imports.
pub fn undefined_calls(source: &str) -> BTreeSet<String> {
    let comment = Regex::new(r"(?m)(^|\s)//.*$").expect("regex");
    let source = &*comment.replace_all(source, "$1");
    let mut defined: BTreeSet<String> = BUILT_IN.iter().map(|s| s.to_string()).collect();
    let definition =
        Regex::new(r"(?:function\s+|(?:const|let|var)\s+)([A-Za-z_$][\w$]*)").expect("regex");
    defined.extend(definition.captures_iter(source).map(|c| c[1].to_string()));
    let imports = Regex::new(r"import\s*\{([^}]*)\}").expect("regex");
    for names in imports.captures_iter(source) {
        defined.extend(
            names[1]
                .split(',')
                .map(|n| n.split(" as ").last().unwrap_or(n).trim().to_string()),
        );
    }
    let call = Regex::new(r"(^|[^.\w$])([A-Za-z_$][\w$]*)\s*\(").expect("regex");
    call.captures_iter(source)
        .map(|c| c[2].to_string())
        .filter(|name| !defined.contains(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_to_a_function_never_defined_is_found() {
        let source = "import { createClient } from 'redis';\nconst c = createClient();\n\
                      if (x) await cancelBooking(1); // too late (sent)\nc.xAck(2);\n";
        assert_eq!(
            undefined_calls(source),
            BTreeSet::from(["cancelBooking".to_string()])
        );
        let fixed = format!("async function cancelBooking(id) {{ return id; }}\n{source}");
        assert!(undefined_calls(&fixed).is_empty());
    }
}
