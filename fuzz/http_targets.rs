// The HTTP request bodies of `gpt2 serve` (OpenAI completions, /tokenize, /detokenize): the same
// parsing and validation the server runs on a body it has read, without the network. The first
// byte picks the endpoint. Included where a `server` module holds the server's `api` and `error`
// files: `fuzz/src/lib.rs` and `crates/gpt2-cli/tests/fuzz_http.rs`.

/// One body for endpoint `data[0] % 3` (completions, tokenize, detokenize).
pub fn http_body(data: &[u8]) {
    use crate::server::api::{CompletionRequest, DetokenizeRequest, Limits, TokenizeRequest};
    thread_local! {
        static TOK: gpt2::tokenizer::Tokenizer =
            gpt2::tokenizer::Tokenizer::gpt2().expect("embedded tokenizer");
    }
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        n_ctx: 1024,
        vocab_size: 50257,
        max_tokens: 1024,
        max_choices: 64,
    };
    fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        match serde_path_to_error::deserialize(de) {
            Ok(v) => Some(v),
            Err(e) => {
                // the 400 the server would send: its message must build
                let _ = crate::server::error::from_json_error(e);
                None
            }
        }
    }
    TOK.with(|tok| match which % 3 {
        0 => {
            if let Some(req) = parse::<CompletionRequest>(body) {
                let _ = req.validate(&limits, tok);
            }
        }
        1 => {
            if let Some(req) = parse::<TokenizeRequest>(body) {
                let special = if req.allow_special {
                    gpt2::tokenizer::Special::AllowEndOfText
                } else {
                    gpt2::tokenizer::Special::None
                };
                let ids = tok.encode(&req.text, special);
                assert_eq!(tok.decode(&ids).expect("encoded ids decode"), req.text);
            }
        }
        _ => {
            if let Some(req) = parse::<DetokenizeRequest>(body) {
                let _ = tok.decode(&req.tokens);
            }
        }
    })
}
