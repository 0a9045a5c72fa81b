//! Example templates for the sprig functions, with what they render.

/// Sprig examples, rendered by the functions' example test. The outputs
/// are `bao agent` 2.7.2's for the same templates (the cases of
/// `tests/data/template-parity/sprig.cases` that read no secret); errors
/// are keyhole's own, worded as Go's where sprig's message is its own.
pub(in super::super) const SPRIG_EXAMPLES: &[(&str, Result<&str, &str>)] = &[
    (
        "{{ sprig_abbrev 5 \"hello world\" }}|{{ sprig_abbrev 3 \"hello\" }}|{{ sprig_abbrev 20 \"short\" }}",
        Ok("he...|hello|short"),
    ),
    (
        "{{ sprig_abbrevboth 5 10 \"1234 5678 9123 4567\" }}|{{ sprig_abbrevboth 0 6 \"abcdefghij\" }}",
        Ok("...5678...|abc..."),
    ),
    (
        "{{ sprig_trunc 5 \"hello world\" }}|{{ sprig_trunc -5 \"hello world\" }}|{{ sprig_trunc 50 \"hi\" }}",
        Ok("hello|world|hi"),
    ),
    ("[{{ sprig_trim \"  hi \\n\" }}]", Ok("[hi]")),
    (
        "{{ sprig_upper \"héllo\" }} {{ sprig_lower \"HÉLLO\" }}",
        Ok("HÉLLO héllo"),
    ),
    (
        "{{ sprig_title \"hello wORLD foo_bar x-y\" }}|{{ sprig_untitle \"Hello World\" }}",
        Ok("Hello WORLD Foo_bar X-Y|hello world"),
    ),
    (
        "{{ sprig_substr 0 5 \"hello world\" }}|{{ sprig_substr -1 3 \"hello\" }}|{{ sprig_substr 2 99 \"hello\" }}",
        Ok("hello|hel|llo"),
    ),
    (
        "{{ sprig_repeat 3 \"ab\" }}|{{ \"x\" | sprig_repeat 2 }}",
        Ok("ababab|xx"),
    ),
    (
        "{{ sprig_trimall \"$\" \"$5.00$\" }} {{ sprig_trimAll \"-\" \"--a-b--\" }} {{ sprig_trimSuffix \"-\" \"a-\" }} {{ sprig_trimPrefix \"-\" \"-a\" }}",
        Ok("5.00 a-b a a"),
    ),
    ("{{ sprig_nospace \"h e\\tl\\nl o\" }}", Ok("hello")),
    ("{{ sprig_initials \"first try  ok\" }}", Ok("fto")),
    (
        "{{ sprig_swapcase \"This Is A.Test\" }}",
        Ok("tHIS iS a.tEST"),
    ),
    (
        "{{ sprig_wrap 5 \"Hello World, this is a longword-here\" }}",
        Ok("Hello\nWorld,\nthis\nis a\nlongword-here"),
    ),
    (
        "{{ sprig_wrapWith 5 \"\\t\" \"Hello World verylongword\" }}",
        Ok("Hello\tWorld\tveryl\tongwo\trd"),
    ),
    (
        "{{ sprig_contains \"cat\" \"catch\" }} {{ sprig_hasPrefix \"ca\" \"catch\" }} {{ sprig_hasSuffix \"ch\" \"catch\" }} {{ sprig_contains \"x\" \"catch\" }}",
        Ok("true true true false"),
    ),
    (
        "{{ sprig_quote \"a\\\"b\" 1 nil 2.5 true }}|{{ sprig_squote \"a\" 1 nil }}|{{ sprig_quote }}",
        Ok("\"a\\\"b\" \"1\" \"2.5\" \"true\"|'a' '1'|"),
    ),
    (
        "{{ sprig_cat \"hello\" 1 nil 2.5 \"x\" }}",
        Ok("hello 1 2.5 x"),
    ),
    (
        "{{ sprig_indent 2 \"a\\n\\nb\" }}|{{ sprig_nindent 3 \"x\\ny\" }}",
        Ok("  a\n  \n  b|\n   x\n   y"),
    ),
    (
        "{{ sprig_replace \" \" \"-\" \"a b c\" }}|{{ \"aaa\" | sprig_replace \"a\" \"b\" }}",
        Ok("a-b-c|bbb"),
    ),
    (
        "{{ sprig_plural \"one\" \"many\" 1 }} {{ sprig_plural \"one\" \"many\" 2 }} {{ len \"ab\" | sprig_plural \"x\" \"y\" }}",
        Ok("one many y"),
    ),
    (
        "{{ sprig_toString 1 }} {{ sprig_toString 2.5 }} {{ sprig_toString nil }} {{ sprig_toString true }} {{ sprig_toString (sprig_list 1 \"a\") }}",
        Ok("1 2.5 <nil> true [1 a]"),
    ),
    (
        "{{ sprig_toStrings (sprig_list 1 \"a\" nil 2.5) }} {{ sprig_toStrings \"x\" }} {{ sprig_toStrings nil | len }}",
        Ok("[1 a 2.5] [x] 0"),
    ),
    (
        "{{ sprig_splitList \",\" \"a,b,,c\" }} {{ sprig_splitList \"\" \"abc\" | len }}",
        Ok("[a b  c] 3"),
    ),
    (
        "{{ sprig_split \"$\" \"foo$bar$baz\" }} {{ (sprig_split \"$\" \"foo$bar\")._1 }}",
        Ok("map[_0:foo _1:bar _2:baz] bar"),
    ),
    (
        "{{ sprig_splitn \"$\" 2 \"foo$bar$baz\" }}",
        Ok("map[_0:foo _1:bar$baz]"),
    ),
    (
        "{{ sprig_join \",\" (sprig_list 1 \"a\" 2.5 nil) }} {{ sprig_join \"-\" \"x\" }}",
        Ok("1,a,2.5 x"),
    ),
    (
        "{{ sprig_randAlphaNum 12 | len }} {{ sprig_regexMatch \"^[A-Za-z]{8}$\" (sprig_randAlpha 8) }} {{ sprig_regexMatch \"^[0-9]{6}$\" (sprig_randNumeric 6) }} {{ sprig_regexMatch \"^[ -~]{9}$\" (sprig_randAscii 9) }} {{ sprig_randAlpha 0 | len }}",
        Ok("12 true true true 0"),
    ),
    (
        "{{ sprig_randBytes 12 | len }} {{ sprig_regexMatch \"^[A-Za-z0-9+/]{16}$\" (sprig_randBytes 12) }} {{ sprig_randBytes 0 }}",
        Ok("16 true "),
    ),
    ("{{ $r := sprig_randInt 3 4 }}{{ $r }}", Ok("3")),
    (
        "{{ sprig_shuffle \"hello\" | len }} {{ sprig_shuffle \"aaa\" }}",
        Ok("5 aaa"),
    ),
    (
        "{{ sprig_regexMatch \"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$\" (sprig_uuidv4) }} {{ sprig_uuidv4 | len }}",
        Ok("true 36"),
    ),
    (
        "{{ sprig_atoi \"42\" }} {{ sprig_atoi \"-7\" }} {{ sprig_atoi \"x\" }} {{ sprig_atoi \"1.5\" }}",
        Ok("42 -7 0 0"),
    ),
    (
        "{{ sprig_int64 \"42\" }} {{ sprig_int64 \"0x10\" }} {{ sprig_int64 \"010\" }} {{ sprig_int64 2.9 }} {{ sprig_int64 \"3.00\" }} {{ sprig_int64 \"3.5\" }} {{ sprig_int64 true }} {{ sprig_int64 nil }}",
        Ok("42 16 8 2 3 0 1 0"),
    ),
    ("{{ sprig_int \"12\" }} {{ sprig_int -3.7 }}", Ok("12 -3")),
    (
        "{{ sprig_float64 \"1.5\" }} {{ sprig_float64 2 }} {{ sprig_float64 \"x\" }} {{ sprig_float64 \"1e3\" }}",
        Ok("1.5 2 0 1000"),
    ),
    (
        "{{ sprig_toDecimal \"0777\" }} {{ sprig_toDecimal 10 }} {{ sprig_toDecimal \"9\" }}",
        Ok("511 8 0"),
    ),
    (
        "{{ sprig_add1 3 }} {{ sprig_add 1 2 \"3\" 4.9 }} {{ sprig_sub 10 3 }} {{ sprig_div 10 3 }} {{ sprig_mod 10 3 }} {{ sprig_mul 2 3 4 }} {{ sprig_add }}",
        Ok("4 10 7 3 1 24 0"),
    ),
    (
        "{{ sprig_add1f 1.5 }} {{ sprig_addf 0.1 0.2 }} {{ sprig_subf 1 0.9 }} {{ sprig_divf 10 3 }} {{ sprig_mulf 1.1 3 }} {{ sprig_divf 1 4 2 }}",
        Ok("2.5 0.3 0.1 3.3333333333333335 3.3 0.125"),
    ),
    (
        "{{ sprig_max 1 5 3 }} {{ sprig_biggest 2 9 }} {{ sprig_min 4 2 8 }} {{ sprig_maxf 1.5 2.5 }} {{ sprig_minf 1.5 -2 }}",
        Ok("5 9 2 2.5 -2"),
    ),
    (
        "{{ sprig_ceil 1.2 }} {{ sprig_floor 1.8 }} {{ sprig_round 3.14159 2 }} {{ sprig_round 2.5 0 }} {{ sprig_round 2.45 1 0.6 }} {{ sprig_ceil \"2.1\" }}",
        Ok("2 1 3.14 3 2.4 3"),
    ),
    (
        "{{ sprig_seq 5 }}|{{ sprig_seq -3 }}|{{ sprig_seq 2 5 }}|{{ sprig_seq 0 2 10 }}|{{ sprig_seq 5 2 1 }}|{{ sprig_seq 5 -2 1 }}|{{ sprig_seq }}",
        Ok("1 2 3 4 5|1 0 -1 -2 -3|2 3 4 5|0 2 4 6 8 10||5 3 1|"),
    ),
    (
        "{{ sprig_until 5 }} {{ sprig_until -3 }} {{ sprig_untilStep 0 10 3 }} {{ sprig_untilStep 10 0 -4 }}",
        Ok("[0 1 2 3 4] [0 -1 -2] [0 3 6 9] [10 6 2]"),
    ),
    (
        "{{ sprig_sortAlpha (sprig_list \"b\" \"a\" 3 \"C\") }} {{ sprig_sortAlpha \"x\" }}",
        Ok("[3 C a b] [x]"),
    ),
    (
        "{{ sprig_list 1 \"a\" 2.5 nil }} {{ sprig_tuple 1 2 }} {{ sprig_list | len }}",
        Ok("[1 a 2.5 <nil>] [1 2] 0"),
    ),
    (
        "{{ sprig_append (sprig_list 1 2) 3 }} {{ sprig_push (sprig_list) \"x\" }} {{ sprig_mustAppend (sprig_splitList \",\" \"a,b\") \"c\" }} {{ sprig_mustPush (sprig_list 1) 2 }}",
        Ok("[1 2 3] [x] [a b c] [1 2]"),
    ),
    (
        "{{ sprig_prepend (sprig_list 1 2) 0 }} {{ sprig_mustPrepend (sprig_list) 1 }}",
        Ok("[0 1 2] [1]"),
    ),
    (
        "{{ sprig_first (sprig_list 1 2 3) }} {{ sprig_mustFirst (sprig_list \"a\") }} {{ sprig_last (sprig_list 1 2 3) }} {{ sprig_mustLast (sprig_list \"z\") }} {{ sprig_first (sprig_list) }}",
        Ok("1 a 3 z <no value>"),
    ),
    (
        "{{ sprig_rest (sprig_list 1 2 3) }} {{ sprig_mustRest (sprig_list 1) }} {{ sprig_initial (sprig_list 1 2 3) }} {{ sprig_mustInitial (sprig_list 1 2) }}",
        Ok("[2 3] [] [1 2] [1]"),
    ),
    (
        "{{ sprig_reverse (sprig_list 1 2 3) }} {{ sprig_mustReverse (sprig_splitList \",\" \"a,b\") }}",
        Ok("[3 2 1] [b a]"),
    ),
    (
        "{{ sprig_uniq (sprig_list 1 2 1 \"1\" 2.0 2) }} {{ sprig_mustUniq (sprig_list \"a\" \"a\") }}",
        Ok("[1 2 1 2] [a]"),
    ),
    (
        "{{ sprig_without (sprig_list 1 2 3 2) 2 }} {{ sprig_mustWithout (sprig_list \"a\" \"b\" \"c\") \"a\" \"c\" }}",
        Ok("[1 3] [b]"),
    ),
    (
        "{{ sprig_has 2 (sprig_list 1 2) }} {{ sprig_has \"2\" (sprig_list 1 2) }} {{ sprig_mustHas \"a\" (sprig_splitList \",\" \"a,b\") }} {{ sprig_has 1 nil }}",
        Ok("true false true false"),
    ),
    (
        "{{ sprig_slice (sprig_list 1 2 3 4) 1 3 }} {{ sprig_slice (sprig_list 1 2 3) 1 }} {{ sprig_mustSlice (sprig_list 1 2 3) }} {{ sprig_slice (sprig_splitList \",\" \"a,b,c\") 2 }}",
        Ok("[2 3] [2 3] [1 2 3] [c]"),
    ),
    (
        "{{ sprig_concat (sprig_list 1 2) (sprig_list 3) (sprig_splitList \",\" \"a,b\") }}",
        Ok("[1 2 3 a b]"),
    ),
    (
        "{{ sprig_chunk 2 (sprig_list 1 2 3 4 5) }} {{ sprig_mustChunk 3 (sprig_list 1 2 3) }} {{ sprig_chunk 2 (sprig_list) }}",
        Ok("[[1 2] [3 4] [5]] [[1 2 3]] []"),
    ),
    (
        "{{ sprig_compact (sprig_list 1 0 \"\" nil \"a\" false true (sprig_list)) }} {{ sprig_mustCompact (sprig_list \"\" \"b\") }}",
        Ok("[1 a true] [b]"),
    ),
    (
        "{{ sprig_dict \"a\" 1 \"b\" \"two\" 3 true \"odd\" }}",
        Ok("map[3:true a:1 b:two odd:]"),
    ),
    (
        "{{ $d := sprig_dict \"a\" 1 }}{{ sprig_get $d \"a\" }} [{{ sprig_get $d \"zz\" }}] {{ sprig_set $d \"b\" 2 }} {{ sprig_unset (sprig_dict \"a\" 1 \"b\" 2) \"a\" }}",
        Ok("1 [] map[a:1 b:2] map[b:2]"),
    ),
    (
        "{{ sprig_hasKey (sprig_dict \"a\" 1) \"a\" }} {{ sprig_hasKey (sprig_dict \"a\" 1) \"b\" }}",
        Ok("true false"),
    ),
    (
        "{{ sprig_pluck \"a\" (sprig_dict \"a\" 1) (sprig_dict \"b\" 2) (sprig_dict \"a\" 3) }}",
        Ok("[1 3]"),
    ),
    (
        "{{ sprig_keys (sprig_dict \"a\" 1) (sprig_dict \"b\" 2) | sprig_sortAlpha }} {{ sprig_values (sprig_dict \"a\" 1) }}",
        Ok("[a b] [1]"),
    ),
    (
        "{{ sprig_pick (sprig_dict \"a\" 1 \"b\" 2 \"c\" 3) \"a\" \"c\" \"z\" }} {{ sprig_omit (sprig_dict \"a\" 1 \"b\" 2 \"c\" 3) \"a\" \"c\" }}",
        Ok("map[a:1 c:3] map[b:2]"),
    ),
    (
        "{{ sprig_merge (sprig_dict \"a\" 1 \"e\" \"\" \"n\" (sprig_dict \"x\" 1)) (sprig_dict \"a\" 2 \"b\" 3 \"e\" \"f\" \"n\" (sprig_dict \"x\" 2 \"y\" 3)) }}",
        Ok("map[a:1 b:3 e:f n:map[x:1 y:3]]"),
    ),
    (
        "{{ sprig_merge (sprig_dict \"a\" 0 \"b\" nil \"c\" (sprig_list) \"d\" (sprig_dict) \"e\" false) (sprig_dict \"a\" 1 \"b\" 2 \"c\" (sprig_list 1) \"d\" (sprig_dict \"x\" 1) \"e\" true) }}",
        Ok("map[a:1 b:2 c:[1] d:map[x:1] e:true]"),
    ),
    (
        "{{ sprig_mustMerge (sprig_dict \"a\" 1) (sprig_dict \"b\" 2) (sprig_dict \"a\" 3 \"c\" 4) }}",
        Ok("map[a:1 b:2 c:4]"),
    ),
    (
        "{{ sprig_mergeOverwrite (sprig_dict \"a\" 1 \"k\" true \"n\" (sprig_dict \"x\" 1 \"z\" 0)) (sprig_dict \"a\" 2 \"k\" false \"b\" \"\" \"n\" (sprig_dict \"x\" 2 \"y\" 3)) }}\n{{ sprig_mergeOverwrite (sprig_dict \"a\" 1 \"b\" 2 \"c\" (sprig_list 1) \"d\" (sprig_dict \"x\" 1) \"e\" \"s\" \"f\" 5) (sprig_dict \"a\" nil \"b\" \"\" \"c\" (sprig_list 2 3) \"d\" \"str\" \"e\" (sprig_dict \"y\" 1) \"f\" (sprig_list)) }}",
        Ok("map[a:2 b: k:false n:map[x:2 y:3 z:0]]\nmap[a:<nil> b: c:[2 3] d:str e:map[y:1] f:[]]"),
    ),
    (
        "{{ sprig_merge (sprig_dict \"a\" 0 \"b\" nil \"c\" (sprig_list) \"d\" (sprig_dict) \"e\" false) (sprig_dict \"a\" 1 \"b\" 2 \"c\" (sprig_list 1) \"d\" (sprig_dict \"x\" 1) \"e\" true) }}",
        Ok("map[a:1 b:2 c:[1] d:map[x:1] e:true]"),
    ),
    (
        "{{ sprig_mustMergeOverwrite (sprig_dict \"a\" 1) (sprig_dict \"a\" 2 \"b\" 3) }}",
        Ok("map[a:2 b:3]"),
    ),
    (
        "{{ sprig_dig \"a\" \"b\" \"dflt\" (sprig_dict \"a\" (sprig_dict \"b\" 1)) }} {{ sprig_dig \"a\" \"z\" \"dflt\" (sprig_dict \"a\" (sprig_dict \"b\" 1)) }}",
        Ok("1 dflt"),
    ),
    (
        "{{ sprig_default \"d\" \"\" }} {{ sprig_default \"d\" \"x\" }} {{ sprig_default \"d\" 0 }} {{ sprig_default \"d\" }} {{ sprig_default \"d\" (sprig_list) }} {{ \"given\" | sprig_default \"d\" }}",
        Ok("d x d d d given"),
    ),
    (
        "{{ sprig_empty \"\" }} {{ sprig_empty 0 }} {{ sprig_empty 0.0 }} {{ sprig_empty nil }} {{ sprig_empty false }} {{ sprig_empty (sprig_list) }} {{ sprig_empty (sprig_dict) }} {{ sprig_empty \"a\" }} {{ sprig_empty 1 }}",
        Ok("true true true true true true true false false"),
    ),
    (
        "{{ sprig_coalesce 0 \"\" \"x\" \"y\" }} {{ sprig_coalesce 0 \"\" }}",
        Ok("x <no value>"),
    ),
    (
        "{{ sprig_all 1 \"a\" true }} {{ sprig_all 1 \"\" }} {{ sprig_any 0 \"\" \"a\" }} {{ sprig_any 0 false }} {{ sprig_all }} {{ sprig_any }}",
        Ok("true false true false true false"),
    ),
    (
        "{{ sprig_ternary \"yes\" \"no\" true }} {{ sprig_ternary \"yes\" \"no\" false }} {{ true | sprig_ternary 1 2 }}",
        Ok("yes no 1"),
    ),
    (
        "{{ sprig_fromJson \"{\\\"a\\\":[1,2.5,\\\"x\\\"],\\\"b\\\":null}\" }} {{ sprig_fromJson \"bad\" }} {{ (sprig_mustFromJson \"{\\\"k\\\":1}\").k }}",
        Ok("map[a:[1 2.5 x] b:<nil>] <no value> 1"),
    ),
    (
        "{{ sprig_toJson (sprig_dict \"a\" 1 \"b\" \"<x>\" \"c\" (sprig_list 1.5 nil true)) }} {{ sprig_mustToJson \"&\" }} {{ sprig_toJson nil }}",
        Ok("{\"a\":1,\"b\":\"\\u003cx\\u003e\",\"c\":[1.5,null,true]} \"\\u0026\" null"),
    ),
    (
        "{{ sprig_toPrettyJson (sprig_dict \"a\" 1 \"b\" (sprig_list 1 2)) }} {{ sprig_mustToPrettyJson (sprig_list) }}",
        Ok("{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n} []"),
    ),
    (
        "{{ sprig_toRawJson (sprig_dict \"a\" \"<&>\") }} {{ sprig_mustToRawJson \"\\\\u003c<\" }}",
        Ok("{\"a\":\"<&>\"} \"\\\\u003c<\""),
    ),
    (
        "{{ sprig_deepCopy (sprig_dict \"a\" (sprig_list 1 2)) }} {{ sprig_mustDeepCopy (sprig_list 1) }}",
        Ok("map[a:[1 2]] [1]"),
    ),
    ("{{ sprig_hello }}", Ok("Hello!")),
    (
        "{{ sprig_typeOf 1 }} {{ sprig_typeOf 1.5 }} {{ sprig_typeOf \"s\" }} {{ sprig_typeOf nil }} {{ sprig_typeOf (sprig_list) }} {{ sprig_typeOf (sprig_dict) }} {{ sprig_typeOf true }}",
        Ok("int float64 string <nil> []interface {} map[string]interface {} bool"),
    ),
    (
        "{{ sprig_typeIs \"int\" 1 }} {{ sprig_typeIs \"string\" 1 }} {{ sprig_typeIsLike \"int\" 1 }} {{ sprig_typeIsLike \"string\" \"s\" }}",
        Ok("true false true true"),
    ),
    (
        "{{ sprig_kindOf 1 }} {{ sprig_kindOf \"s\" }} {{ sprig_kindOf (sprig_list) }} {{ sprig_kindOf (sprig_dict) }} {{ sprig_kindOf nil }} {{ sprig_kindOf 2.5 }} {{ sprig_kindIs \"slice\" (sprig_list) }} {{ sprig_kindIs \"int\" \"1\" }}",
        Ok("int string slice map invalid float64 true false"),
    ),
    (
        "{{ sprig_deepEqual (sprig_list 1 2) (sprig_list 1 2) }} {{ sprig_deepEqual 1 1.0 }} {{ sprig_deepEqual (sprig_dict \"a\" 1) (sprig_dict \"a\" 1) }} {{ sprig_deepEqual \"a\" \"b\" }}",
        Ok("true false true false"),
    ),
    (
        "{{ sprig_base \"/a/b.txt\" }} {{ sprig_base \"\" }} {{ sprig_base \"///\" }} {{ sprig_dir \"/a/b/c\" }} {{ sprig_dir \"x\" }} {{ sprig_clean \"a//b/../c/.\" }} {{ sprig_clean \"/../a\" }} {{ sprig_clean \"../../a/..\" }} {{ sprig_ext \"a/b.tar.gz\" }} {{ sprig_ext \"a.d/b\" }} {{ sprig_isAbs \"/a\" }} {{ sprig_isAbs \"a\" }}",
        Ok("b.txt . / /a/b . a/c /a ../.. .gz  true false"),
    ),
    (
        "{{ sprig_osBase \"/a/b.txt\" }} {{ sprig_osDir \"/a/b/c\" }} {{ sprig_osClean \"a//b/../c\" }} {{ sprig_osExt \"b.txt\" }} {{ sprig_osIsAbs \"/a\" }}",
        Ok("b.txt /a/b a/c .txt true"),
    ),
    (
        "{{ sprig_b64enc \"hello?\" }} {{ sprig_b64dec \"aGVsbG8/\" }} {{ sprig_b64dec \"!!\" }}",
        Ok("aGVsbG8/ hello? illegal base64 data at input byte 0"),
    ),
    (
        "{{ sprig_b32enc \"hello\" }} {{ sprig_b32dec \"NBSWY3DP\" }}",
        Ok("NBSWY3DP hello"),
    ),
    (
        "{{ sprig_sha1sum \"hello\" }} {{ sprig_sha256sum \"hello\" }} {{ sprig_adler32sum \"hello\" }}",
        Ok(
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 103547413",
        ),
    ),
    (
        "{{ sprig_regexMatch \"^[a-z]+\\\\d$\" \"abc1\" }} {{ sprig_regexMatch \"(\" \"x\" }} {{ sprig_mustRegexMatch \"b+\" \"abbc\" }} {{ sprig_regexMatch \"^\\\\w+$\" \"héllo\" }} {{ sprig_regexMatch \"^\\\\pL+$\" \"héllo\" }}",
        Ok("true false true false true"),
    ),
    (
        "{{ sprig_regexFindAll \"[2,4,6,8]\" \"123456789\" -1 }} {{ sprig_regexFindAll \"a\" \"aaa\" 2 }} {{ sprig_mustRegexFindAll \"x\" \"abc\" -1 }} {{ sprig_regexFind \"[a-z]+\" \"12abc34\" }} [{{ sprig_mustRegexFind \"z\" \"abc\" }}]",
        Ok("[2 4 6 8] [a a] [] abc []"),
    ),
    (
        "{{ sprig_regexReplaceAll \"a(x*)b\" \"-ab-axxb-\" \"${1}W\" }} {{ sprig_mustRegexReplaceAll \"(\\\\w+)@\" \"me@x\" \"$1 at \" }} {{ sprig_regexReplaceAllLiteral \"a(x*)b\" \"-ab-\" \"${1}\" }} {{ sprig_mustRegexReplaceAllLiteral \"\\\\.\" \"a.b\" \"$\" }}",
        Ok("-W-xxW- me at x -${1}- a$b"),
    ),
    (
        "{{ sprig_regexSplit \"z+\" \"pizza\" -1 }} {{ sprig_mustRegexSplit \",\" \"a,b,c\" 2 }} {{ sprig_regexSplit \"\" \"abc\" -1 }} {{ sprig_regexSplit \"x\" \"\" -1 | len }} {{ sprig_regexSplit \"a\" \"banana\" -1 }}",
        Ok("[pi a] [a b,c] [a b c] 1 [b n n ]"),
    ),
    (
        "{{ sprig_regexQuoteMeta \"1.2+[x]$\" }}",
        Ok("1\\.2\\+\\[x\\]\\$"),
    ),
    (
        "{{ sprig_plural \"a\" \"b\" 1.0 }} {{ sprig_repeat 2.0 \"x\" }}",
        Ok("a xx"),
    ),
    (
        "{{ sprig_float64 \"0x10\" }} {{ sprig_int \"1e3\" }} {{ sprig_int \" 5\" }} {{ sprig_atoi \"+5\" }} {{ sprig_int64 \"-0b101\" }} {{ sprig_int \"1_000\" }} {{ sprig_float64 \"1_000.5\" }} {{ sprig_float64 \"inf\" }} {{ sprig_float64 \".5\" }}",
        Ok("0 0 0 5 -5 1000 1000.5 +Inf 0.5"),
    ),
    (
        "[{{ sprig_toJson (sprig_float64 \"inf\") }}] [{{ sprig_toPrettyJson (sprig_list (sprig_float64 \"nan\")) }}]",
        Ok("[] []"),
    ),
    (
        "{{ sprig_regexMatch \"[[:alpha:]]+\" \"abc\" }} {{ sprig_regexFindAll \"[a-c[]\" \"a[b\" -1 }} {{ sprig_regexFindAll \"\\\\bfoo\\\\b\" \"foo éfoo foo\" -1 }} {{ sprig_regexFindAll \"a*\" \"baaab\" -1 | len }} {{ sprig_regexReplaceAll \"a(?P<x>b)\" \"ab\" \"[$x$1x]\" }} {{ sprig_regexFindAll \"\\\\d+\" \"1٣2\" -1 }}",
        Ok("true [a [ b] [foo foo foo] 3 [b] [1 2]"),
    ),
    (
        "{{ sprig_wrap 0 \"ab cd\" }}|{{ sprig_wrapWith 3 \"\" \"abcdefg hi\" }}|{{ sprig_abbrevboth 10 20 \"abcdefghijklmnopqrstuvwxyz0123\" }}|{{ sprig_nospace \"a é b\" }}|{{ sprig_initials \"é b\" }}|{{ sprig_trunc 2 \"é\" }}",
        Ok("ab\ncd|abc\ndef\ng\nhi|...klmnopqrstuvwx...|aÃ©b|Ãb|é"),
    ),
    (
        "{{ sprig_seq 3 -1 1 }}|{{ sprig_seq 1 0 3 }}|{{ sprig_until 0 }}|{{ sprig_untilStep 0 5 0 }}",
        Ok("3 2 1||[]|[]"),
    ),
    (
        "{{ sprig_quote \"é\\x01\" }}|{{ sprig_squote nil }}|{{ sprig_cat nil }}|{{ sprig_toString (sprig_dict \"a\" nil) }}",
        Ok("\"é\\x01\"|||map[a:<nil>]"),
    ),
    (
        "{{ sprig_date \"2006-01-02 15:04:05 Mon Jan MST -0700 Z07:00 -07:00 PM pm .000 .999 _2 __2 002 06 3 03 4 5 January Monday _2006\" 1700000000 }}",
        Ok(
            "2023-11-14 22:13:20 Tue Nov UTC +0000 Z +00:00 PM pm .000  14 318 318 23 10 10 13 20 November Tuesday _2023",
        ),
    ),
    (
        "{{ sprig_date \"2006-01-02T15:04:05Z07:00\" 0 }} {{ sprig_date \"Jan _2 3:04PM\" -86399 }} {{ sprig_date \"2006\" \"not a time\" | len }} {{ sprig_date \"Monday, 02-Jan-06\" 951782400 }}",
        Ok("1970-01-01T00:00:00Z Dec 31 12:00AM 4 Tuesday, 29-Feb-00"),
    ),
    (
        "{{ sprig_dateInZone \"2006-01-02 15:04 MST\" 1700000000 \"UTC\" }} {{ sprig_date_in_zone \"15:04\" 1700000000 \"UTC\" }} {{ sprig_htmlDate 1700000000 }} {{ sprig_htmlDateInZone 0 \"UTC\" }}",
        Ok("2023-11-14 22:13 UTC 22:13 2023-11-14 1970-01-01"),
    ),
    (
        "{{ sprig_now | sprig_date \"2006\" | len }} {{ gt (sprig_now | sprig_unixEpoch | sprig_int64) 1700000000 }} {{ sprig_ago (sprig_now) }}",
        Ok("4 true 0s"),
    ),
    (
        "{{ sprig_toDate \"2006-01-02\" \"2024-05-01\" | sprig_unixEpoch }} {{ sprig_toDate \"2006-01-02\" \"2024-05-01\" | sprig_date \"Jan 2, 2006 15:04\" }} {{ sprig_toDate \"2006-01-02\" \"bad\" | sprig_unixEpoch }} {{ sprig_mustToDate \"02/01/2006 3:04PM\" \"29/02/2024 1:30PM\" | sprig_unixEpoch }}",
        Ok("1714521600 May 1, 2024 00:00 -62135596800 1709213400"),
    ),
    (
        "{{ sprig_toDate \"2006-01-02\" \"2024-05-01\" | sprig_dateModify \"1h30m\" | sprig_unixEpoch }} {{ sprig_toDate \"2006-01-02\" \"2024-05-01\" | sprig_date_modify \"bad\" | sprig_unixEpoch }} {{ sprig_toDate \"2006-01-02\" \"2024-05-01\" | sprig_mustDateModify \"-24h\" | sprig_htmlDate }} {{ sprig_toDate \"2006-01-02\" \"2024-05-01\" | sprig_must_date_modify \"1.5h\" | sprig_unixEpoch }}",
        Ok("1714527000 1714521600 2024-04-30 1714527000"),
    ),
    (
        "{{ sprig_duration \"90\" }} {{ sprig_duration \"3725\" }} {{ sprig_duration \"x\" }} {{ sprig_duration (sprig_int64 \"86400\") }} {{ sprig_duration \"0\" }} {{ sprig_duration \"-61\" }}",
        Ok("1m30s 1h2m5s 0s 24h0m0s 0s -1m1s"),
    ),
    (
        "{{ sprig_durationRound \"2h10m\" }} {{ sprig_durationRound \"-3h5m\" }} {{ sprig_durationRound \"400h\" }} {{ sprig_durationRound \"10000h\" }} {{ sprig_durationRound \"1s\" }} {{ sprig_durationRound \"45.5s\" }} {{ sprig_durationRound \"1ms\" }} {{ sprig_durationRound \"bad\" }}",
        Ok("2h 3h 16d 1y 0s 45s 0s 0s"),
    ),
    (
        "{{ $v := sprig_semver \"v1.2.3-beta.1+build.5\" }}{{ $v.Major }} {{ $v.Minor }} {{ $v.Patch }} {{ $v.Prerelease }} {{ $v.Metadata }} {{ $v.Original }} {{ (sprig_semver \"2\").Minor }}",
        Ok("1 2 3 beta.1 build.5 v1.2.3-beta.1+build.5 0"),
    ),
    (
        "{{ sprig_semverCompare \">=1.2.3\" \"1.2.3\" }} {{ sprig_semverCompare \">1.2\" \"1.2.5\" }} {{ sprig_semverCompare \"^1.2\" \"1.9.0\" }} {{ sprig_semverCompare \"^1.2\" \"2.0.0\" }} {{ sprig_semverCompare \"^0.2.3\" \"0.2.9\" }} {{ sprig_semverCompare \"^0.2.3\" \"0.3.0\" }} {{ sprig_semverCompare \"^0.0.3\" \"0.0.4\" }} {{ sprig_semverCompare \"~1.2.3\" \"1.2.9\" }} {{ sprig_semverCompare \"~1.2.3\" \"1.3.0\" }} {{ sprig_semverCompare \"~1\" \"1.9.0\" }}",
        Ok("true false true false true false false true false true"),
    ),
    (
        "{{ sprig_semverCompare \"1.2.x\" \"1.2.7\" }} {{ sprig_semverCompare \"1.x\" \"2.0.0\" }} {{ sprig_semverCompare \"*\" \"3.1.4\" }} {{ sprig_semverCompare \">= 1.2, < 2\" \"1.5.0\" }} {{ sprig_semverCompare \">= 1.2 < 2\" \"2.0.0\" }} {{ sprig_semverCompare \"1.2 - 1.4.5\" \"1.4.5\" }} {{ sprig_semverCompare \"1.2 - 1.4.5\" \"1.4.6\" }} {{ sprig_semverCompare \"<1.0 || >=3\" \"3.0.0\" }} {{ sprig_semverCompare \"!=1.2.3\" \"1.2.3\" }} {{ sprig_semverCompare \"!=1.2.x\" \"1.3.0\" }} {{ sprig_semverCompare \"<=1.2.x\" \"1.2.9\" }} {{ sprig_semverCompare \">1.2.x\" \"1.3.0\" }} {{ sprig_semverCompare \"=1.2.3\" \"v1.2.3\" }}",
        Ok("true false true true false true false true false true true true true"),
    ),
    (
        "{{ sprig_semverCompare \">=1.0.0\" \"1.2.0-beta\" }} {{ sprig_semverCompare \">=1.0.0-0\" \"1.2.0-beta\" }} {{ sprig_semverCompare \"<1.0.0-rc.10\" \"1.0.0-rc.9\" }} {{ sprig_semverCompare \"<1.0.0-beta\" \"1.0.0-alpha.1\" }} {{ sprig_semverCompare \"1.0.0-alpha\" \"1.0.0-alpha+meta\" }}",
        Ok("false true true true true"),
    ),
    (
        "{{ sprig_urlParse \"postgres://us%40er:p%3Ass@db.example.com:5432/my%20db?sslmode=disable&x=1#frag%21\" }}\n{{ sprig_urlParse \"mailto:joe@example.com\" }}\n{{ sprig_urlParse \"/just/a/path?q\" }}\n{{ (sprig_urlParse \"https://[::1]:8200/v1/\").hostname }} {{ (sprig_urlParse \"HTTP://Host\").scheme }}",
        Ok(
            "map[fragment:frag! host:db.example.com:5432 hostname:db.example.com opaque: path:/my db query:sslmode=disable&x=1 scheme:postgres userinfo:us%40er:p%3Ass]\nmap[fragment: host: hostname: opaque:joe@example.com path: query: scheme:mailto userinfo:]\nmap[fragment: host: hostname: opaque: path:/just/a/path query:q scheme: userinfo:]\n::1 http",
        ),
    ),
    (
        "{{ sprig_urlJoin (sprig_dict \"scheme\" \"https\" \"host\" \"example.com:8443\" \"path\" \"/a b/c?\" \"query\" \"x=1\" \"fragment\" \"top part\" \"userinfo\" \"me:s3cr@t\") }}\n{{ sprig_urlJoin (sprig_dict \"scheme\" \"mailto\" \"opaque\" \"joe@example.com\") }} {{ sprig_urlJoin (sprig_dict \"path\" \"a:b\") }} {{ sprig_urlJoin (sprig_dict \"host\" \"h\" \"path\" \"rel\") }}\n{{ sprig_urlJoin (sprig_urlParse \"postgres://u:p@db:5432/app?sslmode=require\") }}",
        Ok(
            "https://me:s3cr%40t@example.com:8443/a%20b/c%3F?x=1#top%20part\nmailto:joe@example.com ./a:b //h/rel\npostgres://u:p@db:5432/app?sslmode=require",
        ),
    ),
    (
        "{{ sprig_snakecase \"FirstName\" }} {{ sprig_snakecase \"HTTPServer\" }} {{ sprig_snakecase \"NoHTTPS\" }} {{ sprig_snakecase \"GO_PATH\" }} {{ sprig_snakecase \"GO PATH\" }} {{ sprig_snakecase \"GO-PATH\" }} {{ sprig_snakecase \"http2xx\" }} {{ sprig_snakecase \"HTTP20xOK\" }} {{ sprig_snakecase \"Duration2m3s\" }} {{ sprig_snakecase \"Bld4Floor3rd\" }} {{ sprig_snakecase \"a.b.c\" }} {{ sprig_snakecase \"  leading and trailing  \" }} {{ sprig_snakecase \"DB_HOST_2\" }} {{ sprig_snakecase \"x\" }}",
        Ok(
            "first_name http_server no_https go_path go_path go_path http_2xx http_20x_ok duration_2m3s bld4_floor_3rd a.b.c __leading_and_trailing__ db_host_2 x",
        ),
    ),
    (
        "{{ sprig_kebabcase \"FirstName\" }} {{ sprig_kebabcase \"HTTPServer\" }} {{ sprig_kebabcase \"some_words here\" }} {{ sprig_kebabcase \"v2Api\" }} {{ sprig_kebabcase \"ABC\" }}",
        Ok("first-name http-server some-words-here v2-api abc"),
    ),
    (
        "{{ sprig_camelcase \"http_server\" }} {{ sprig_camelcase \"_complex__case_\" }} {{ sprig_camelcase \"some words-here\" }} {{ sprig_camelcase \"no_https\" }} {{ sprig_camelcase \"x\" }} [{{ sprig_camelcase \"__\" }}] [{{ sprig_camelcase \"\" }}]",
        Ok("HttpServer _Complex_Case_ SomeWordsHere NoHttps X [___] []"),
    ),
    (
        "{{ sprig_bcrypt \"secret\" | len }} {{ sprig_regexMatch \"^\\\\$2a\\\\$10\\\\$[./A-Za-z0-9]{53}$\" (sprig_bcrypt \"secret\") }} {{ sprig_bcrypt (sprig_repeat 73 \"x\") }}",
        Ok(
            "60 true failed to encrypt string with bcrypt: bcrypt: password length exceeds 72 bytes",
        ),
    ),
    (
        "{{ sprig_htpasswd \"ann\" \"pw\" | sprig_regexMatch \"^ann:\\\\$2a\\\\$10\\\\$[./A-Za-z0-9]{53}$\" }} {{ sprig_htpasswd \"a:b\" \"pw\" }}",
        Ok("true invalid username: a:b"),
    ),
    (
        "{{ sprig_decryptAES \"my-key\" \"336B0e4Aia384HOVRiS/kUJpUSWQGKAZqNcgMW+XRtQvtwlQhW2dk/GFkTHbaMelMcpSEH0DTucukacQB+cvqw==\" }}|{{ sprig_encryptAES \"k\" \"secret text\" | sprig_decryptAES \"k\" }}|{{ sprig_encryptAES \"k\" \"0123456789abcdef\" | len }}|{{ sprig_encryptAES \"k\" \"\" }}|{{ sprig_decryptAES \"k\" \"\" }}|{{ sprig_encryptAES \"a-very-long-password-longer-than-32-bytes\" \"x\" | sprig_decryptAES \"a-very-long-password-longer-than-32-bytes-cut\" }}",
        Ok("hello world, more than one block|secret text|64|||x"),
    ),
    (
        r#"{{ sprig_derivePassword 1 "long" "password" "user" "example.com" }}|{{ sprig_derivePassword 2 "maximum" "pässword" "üser" "site" }}|{{ sprig_derivePassword 0 "pin" "" "" "" }}|{{ sprig_derivePassword 3 "basic" "a" "b" "c" }}|{{ sprig_derivePassword 1 "nope" "a" "b" "c" }}"#,
        Ok("ZedaFaxcZaso9*|d4$1TlP5d4g2&bWxWLPy|2847|hR68jrH4|cannot find password template nope"),
    ),
    (
        r#"{{ sprig_derivePassword 1 "medium" "pw" "ann" "db.example" }}|{{ sprig_derivePassword 7 "short" "pw" "ann" "db.example" }}|{{ sprig_derivePassword 4294967297 "medium" "pw" "ann" "db.example" }}"#,
        Ok("MacRev1^|Mob0|MacRev1^"),
    ),
    (
        r#"{{ sprig_genPrivateKey "ecdsa" | len }} {{ sprig_genPrivateKey "ed25519" | len }} {{ sprig_genPrivateKey "x" }} {{ sprig_genPrivateKey "ecdsa" | sprig_substr 0 39 }}"#,
        Ok("227 119 Unknown type x -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE"),
    ),
    (
        r#"{{ $ca := sprig_genCA "ca" 30 }}{{ sprig_typeOf $ca }} {{ sprig_kindOf $ca }} {{ sprig_substr 0 31 $ca.Cert }}|{{ sprig_substr 0 31 $ca.Key }}|{{ sprig_toJson $ca | sprig_fromJson | sprig_keys | sprig_sortAlpha }}"#,
        Ok(
            "sprig.certificate struct -----BEGIN CERTIFICATE-----\nMII|-----BEGIN RSA PRIVATE KEY-----|[Cert Key]",
        ),
    ),
    (
        r#"{{ $k := sprig_genPrivateKey "ed25519" }}{{ $ca := sprig_genCAWithKey "ca" 1 $k }}{{ eq $ca.Key $k }} {{ $s := sprig_genSelfSignedCert "svc" (sprig_list "10.0.0.1") (sprig_list "svc.example") 1 }}{{ sprig_substr 0 27 $s.Cert }} {{ eq (sprig_genSelfSignedCertWithKey "svc" nil nil 1 $k).Key $k }}"#,
        Ok("true -----BEGIN CERTIFICATE----- true"),
    ),
    (
        r#"{{ $ca := sprig_genCA "ca" 1 }}{{ $l := sprig_genSignedCert "leaf" nil nil 1 $ca }}{{ sprig_substr 0 27 $l.Cert }} {{ $k := sprig_genPrivateKey "ecdsa" }}{{ eq (sprig_genSignedCertWithKey "leaf" nil nil 1 $ca $k).Key $k }} {{ $b := sprig_buildCustomCert (sprig_b64enc $ca.Cert) (sprig_b64enc $ca.Key) }}{{ eq $b.Cert $ca.Cert }} {{ eq $b.Key $ca.Key }}"#,
        Ok("-----BEGIN CERTIFICATE----- true true true"),
    ),
    // The environment and the resolver.
    (
        "[{{ sprig_env \"KEYHOLE_SURELY_UNSET_VARIABLE\" }}] {{ sprig_env \"PATH\" | len | lt 0 }}",
        Ok("[] true"),
    ),
    (
        "[{{ sprig_expandenv \"a $KEYHOLE_SURELY_UNSET_VARIABLE ${KEYHOLE_SURELY_UNSET_VARIABLE}b $ c ${} d $$\" }}]",
        Ok("[a  b $ c  d ]"),
    ),
    (
        "{{ sprig_regexMatch \"^(127\\\\.0\\\\.0\\\\.1|::1)$\" (sprig_getHostByName \"localhost\") }}",
        Ok("true"),
    ),
    // Errors.
    (
        "{{ sprig_upper 1 }}",
        Err("error calling sprig_upper: wrong type for value; expected string; got int"),
    ),
    (
        "{{ sprig_append \"x\" 1 }}",
        Err("error calling sprig_append: Cannot push on type string"),
    ),
    (
        "{{ sprig_first nil }}",
        Err(
            "error calling sprig_first: runtime error: invalid memory address or nil pointer dereference",
        ),
    ),
    (
        "{{ sprig_div 1 0 }}",
        Err("error calling sprig_div: runtime error: integer divide by zero"),
    ),
    (
        "{{ sprig_divf 1 0 }}",
        Err("error calling sprig_divf: decimal division by 0"),
    ),
    (
        "{{ sprig_repeat -1 \"a\" }}",
        Err("error calling sprig_repeat: strings: negative Repeat count"),
    ),
    (
        "{{ sprig_indent -2 \"a\" }}",
        Err("error calling sprig_indent: strings: negative Repeat count"),
    ),
    (
        "{{ sprig_substr 4 5 \"abc\" }}",
        Err(
            "error calling sprig_substr: runtime error: slice bounds out of range [4:3] with length 3",
        ),
    ),
    (
        "{{ sprig_regexFind \"(\" \"x\" }}",
        Err(
            "error calling sprig_regexFind: regexp: Compile(`(`): error parsing regexp: invalid syntax: `(`",
        ),
    ),
    (
        "{{ sprig_mustRegexMatch \"(\" \"x\" }}",
        Err("error calling sprig_mustRegexMatch: error parsing regexp: invalid syntax: `(`"),
    ),
    (
        "{{ sprig_mustRegexFindAll \"(\" \"x\" 1 }}",
        Err("error calling sprig_mustRegexFindAll: error parsing regexp: invalid syntax: `(`"),
    ),
    (
        "{{ sprig_mustRegexFind \"(\" \"x\" }}",
        Err("error calling sprig_mustRegexFind: error parsing regexp: invalid syntax: `(`"),
    ),
    (
        "{{ sprig_mustRegexReplaceAll \"(\" \"x\" \"\" }}",
        Err("error calling sprig_mustRegexReplaceAll: error parsing regexp: invalid syntax: `(`"),
    ),
    (
        "{{ sprig_mustRegexReplaceAllLiteral \"(\" \"x\" \"\" }}",
        Err(
            "error calling sprig_mustRegexReplaceAllLiteral: error parsing regexp: invalid syntax: `(`",
        ),
    ),
    (
        "{{ sprig_mustRegexSplit \"(\" \"x\" 1 }}",
        Err("error calling sprig_mustRegexSplit: error parsing regexp: invalid syntax: `(`"),
    ),
    (
        "{{ sprig_fail \"boom\" }}",
        Err("error calling sprig_fail: boom"),
    ),
    (
        "{{ sprig_mustFromJson \"x\" }}",
        Err("error calling sprig_mustFromJson: mustFromJson: expected value at line 1 column 1"),
    ),
    (
        "{{ sprig_mustToJson (sprig_float64 \"nan\") }}",
        Err("error calling sprig_mustToJson: json: unsupported value: NaN"),
    ),
    (
        "{{ sprig_set nil \"a\" 1 }}",
        Err("error calling sprig_set: assignment to entry in nil map"),
    ),
    (
        "{{ sprig_dig \"a\" (sprig_dict) }}",
        Err("error calling sprig_dig: dig needs at least three arguments"),
    ),
    (
        "{{ sprig_dig \"a\" \"d\" \"notmap\" }}",
        Err(
            "error calling sprig_dig: interface conversion: interface {} is string, not map[string]interface {}",
        ),
    ),
    (
        "{{ sprig_randInt 5 5 }}",
        Err("error calling sprig_randInt: invalid argument to Intn"),
    ),
    (
        "{{ sprig_get \"x\" \"k\" }}",
        Err(
            "error calling sprig_get: wrong type for value; expected map[string]interface {}; got string",
        ),
    ),
    (
        "{{ sprig_slice (sprig_list 1 2) 3 }}",
        Err("error calling sprig_slice: reflect.Value.Slice: slice index out of bounds"),
    ),
    (
        "{{ sprig_concat 1 }}",
        Err("error calling sprig_concat: Cannot concat type int as list"),
    ),
    (
        "{{ sprig_chunk 0 (sprig_list 1) }}",
        Err("error calling sprig_chunk: runtime error: makeslice: len out of range"),
    ),
    (
        "{{ sprig_ternary 1 2 \"x\" }}",
        Err("error calling sprig_ternary: wrong type for value; expected bool; got string"),
    ),
    (
        "{{ sprig_until 1.5 }}",
        Err("error calling sprig_until: wrong type for value; expected int; got float64"),
    ),
    (
        "{{ sprig_has 1 \"abc\" }}",
        Err("error calling sprig_has: Cannot find has on type string"),
    ),
    (
        "{{ sprig_rest 5 }}",
        Err("error calling sprig_rest: Cannot find rest on type int"),
    ),
    (
        "{{ sprig_semver \"1.x\" }}",
        Err("error calling sprig_semver: invalid semantic version"),
    ),
    (
        "{{ sprig_semver \"1.2.3-01\" }}",
        Err("error calling sprig_semver: version segment starts with 0"),
    ),
    (
        "{{ sprig_semverCompare \">>1\" \"1.0.0\" }}",
        Err("error calling sprig_semverCompare: improper constraint: >>1"),
    ),
    (
        "{{ sprig_mustToDate \"2006\" \"x\" }}",
        Err("error calling sprig_mustToDate: parsing time \"x\" as \"2006\": cannot parse"),
    ),
    (
        "{{ sprig_mustDateModify \"x\" 0 }}",
        Err("error calling sprig_mustDateModify: time: invalid duration \"x\""),
    ),
    (
        "{{ sprig_dateInZone \"2006\" 0 \"Europe/Paris\" }}",
        Err(
            "error calling sprig_dateInZone: time zone \"Europe/Paris\" is not supported; only UTC is",
        ),
    ),
    (
        "{{ sprig_urlParse \":x\" }}",
        Err(
            "error calling sprig_urlParse: unable to parse url: parse \":x\": missing protocol scheme",
        ),
    ),
    (
        "{{ sprig_urlJoin (sprig_dict \"host\" 1) }}",
        Err("error calling sprig_urlJoin: interface conversion: interface {} is int, not string"),
    ),
    (
        "{{ sprig_decryptAES \"k\" \"YWJj\" }}",
        Err(
            "error calling sprig_decryptAES: runtime error: slice bounds out of range [:16] with capacity 3",
        ),
    ),
    (
        "{{ sprig_decryptAES \"k\" \"MDEyMzQ1Njc4OWFiY2RlZjAx\" }}",
        Err("error calling sprig_decryptAES: crypto/cipher: input not full blocks"),
    ),
    (
        r#"{{ sprig_genCAWithKey "x" 1 (sprig_genPrivateKey "dsa") }}"#,
        Err(
            "error calling sprig_genCAWithKey: error creating certificate: x509: certificate private key does not implement crypto.Signer",
        ),
    ),
    (
        r#"{{ sprig_genSignedCertWithKey "x" nil nil 1 (sprig_genCA "ca" 1) (sprig_genPrivateKey "dsa") }}"#,
        Err(
            "error calling sprig_genSignedCertWithKey: error creating certificate: x509: unsupported public key type: *dsa.PublicKey",
        ),
    ),
    (
        r#"{{ sprig_genSelfSignedCert "x" (sprig_list "1.2.3") nil 1 }}"#,
        Err("error calling sprig_genSelfSignedCert: error parsing ip: 1.2.3"),
    ),
    (
        r#"{{ sprig_genSelfSignedCert "x" (sprig_list 5) nil 1 }}"#,
        Err("error calling sprig_genSelfSignedCert: error parsing ip: 5 is not a string"),
    ),
    (
        r#"{{ sprig_genSelfSignedCert "x" nil (sprig_list 5) 1 }}"#,
        Err(
            "error calling sprig_genSelfSignedCert: error processing alternate dns name: 5 is not a string",
        ),
    ),
    (
        r#"{{ sprig_genSelfSignedCert "x" nil (sprig_list "é.example") 1 }}"#,
        Err(
            "error calling sprig_genSelfSignedCert: error creating certificate: x509: \"é.example\" cannot be encoded as an IA5String",
        ),
    ),
    (
        r#"{{ sprig_genSelfSignedCert "x" (sprig_splitList "," "a") nil 1 }}"#,
        Err("wrong type for value; expected []interface {}; got []string"),
    ),
    (
        r#"{{ sprig_genSignedCert "x" nil nil 1 "ca" }}"#,
        Err("wrong type for value; expected sprig.certificate; got string"),
    ),
    (
        r#"{{ sprig_buildCustomCert "!!" "" }}"#,
        Err("error calling sprig_buildCustomCert: unable to decode base64 certificate"),
    ),
    (
        r#"{{ sprig_buildCustomCert "YWJj" "YWJj" }}"#,
        Err("error calling sprig_buildCustomCert: unable to decode certificate"),
    ),
    (
        r#"{{ sprig_buildCustomCert (sprig_b64enc (sprig_genCA "a" 1).Cert) "YWJj" }}"#,
        Err("error calling sprig_buildCustomCert: error parsing private key: no PEM data in input"),
    ),
    (
        r#"{{ sprig_genCAWithKey "x" 1 (sprig_genCA "a" 1).Cert }}"#,
        Err(
            "error calling sprig_genCAWithKey: parsing private key: no private key data in PEM block of type CERTIFICATE",
        ),
    ),
    (
        r#"{{ sprig_genCAWithKey "x" 1 "-----BEGIN FOO PRIVATE KEY-----\nAAAA\n-----END FOO PRIVATE KEY-----\n" }}"#,
        Err(
            "error calling sprig_genCAWithKey: parsing private key: invalid private key type FOO PRIVATE KEY",
        ),
    ),
    (
        r#"{{ $a := sprig_genCA "a" 1 }}{{ $b := sprig_genCA "b" 1 }}{{ sprig_genSignedCert "x" nil nil 1 (sprig_buildCustomCert (sprig_b64enc $a.Cert) (sprig_b64enc $b.Key)) }}"#,
        Err(
            "error calling sprig_genSignedCert: error creating certificate: x509: provided PrivateKey doesn't match parent's PublicKey",
        ),
    ),
    (
        r#"{{ sprig_derivePassword -1 "long" "a" "b" "c" }}"#,
        Err("expected unsigned integer; found -1"),
    ),
];
