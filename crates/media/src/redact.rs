//! Secrets out of text that is logged or stored: ffmpeg's stderr and ffprobe's JSON echo the URLs
//! they were given, and a URL may carry a signature (a fresco signed URL, an Azure SAS token, an
//! S3 presigned URL) or a user and password. [`redact`] blanks those parts wherever they appear
//! in a text, so that a stderr tail can go into a job record or a log line safely.
//!
//! What is blanked:
//! - the value of every query parameter named in [`SECRET_PARAMETERS`] (case-insensitive), after
//!   `?`, `&` or `;`, whether or not the rest of the URL is there (a bare SAS token is caught too);
//! - the user information of any `scheme://user:password@host`.
//!
//! The text around them stays as it was, so messages remain useful: the object's path is kept.

/// What a blanked value is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Query parameters whose values are secret or tied to a secret: signatures, credentials and
/// tokens, and the fields of a SAS that a forger would need alongside it (expiry, permissions,
/// delegation key). Compared without regard to case.
pub const SECRET_PARAMETERS: &[&str] = &[
    // fresco's own signed URLs (see fresco-server's `signing` module) and Azure SAS.
    "sig",
    "se",
    "sp",
    "st",
    "skoid",
    "sktid",
    "skt",
    "ske",
    "sks",
    "skv",
    "saoid",
    "suoid",
    // S3 presigned URLs (SigV4 and the older V2 form).
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "signature",
    "awsaccesskeyid",
    // Google Cloud Storage signed URLs.
    "x-goog-signature",
    "x-goog-credential",
    // OAuth-style tokens in query strings.
    "token",
    "access_token",
    "code",
    "password",
    "secret",
];

/// `text` with every secret query value and URL user information replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    redact_userinfo(&redact_parameters(text))
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// Where a query value ends: at the next parameter or anything that cannot be inside a URL as
/// tools print it (spaces, quotes, JSON escapes, brackets).
fn is_value_end(b: u8) -> bool {
    b.is_ascii_whitespace()
        || b.is_ascii_control()
        || matches!(
            b,
            b'&' | b';' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'\\' | b'`' | b')' | b']' | b'}'
        )
}

fn redact_parameters(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if matches!(bytes[i], b'?' | b'&' | b';') {
            let name_start = i + 1;
            let mut name_end = name_start;
            while name_end < bytes.len() && is_name_byte(bytes[name_end]) {
                name_end += 1;
            }
            if name_end > name_start && name_end < bytes.len() && bytes[name_end] == b'=' {
                let name = &text[name_start..name_end];
                let value_start = name_end + 1;
                let mut value_end = value_start;
                while value_end < bytes.len() && !is_value_end(bytes[value_end]) {
                    value_end += 1;
                }
                let secret = SECRET_PARAMETERS
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(name));
                if secret && value_end > value_start {
                    out.push_str(&text[copied..value_start]);
                    out.push_str(REDACTED);
                    copied = value_end;
                    i = value_end;
                } else {
                    // Another parameter's value may hold a `?name=` of its own (a URL passed as
                    // a parameter): look inside it too. Found by fuzzing: `&x=...?se=...` kept
                    // its `se`.
                    i = value_start;
                }
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn redact_userinfo(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let authority_start = search + found + 3;
        let mut authority_end = authority_start;
        while authority_end < bytes.len()
            && !matches!(
                bytes[authority_end],
                b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>'
            )
            && !bytes[authority_end].is_ascii_whitespace()
        {
            authority_end += 1;
        }
        if let Some(at) = text[authority_start..authority_end].rfind('@') {
            out.push_str(&text[copied..authority_start]);
            out.push_str(REDACTED);
            copied = authority_start + at;
        }
        search = authority_end.max(authority_start);
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_sas_values_are_blanked_and_the_path_kept() {
        // A value runs to the next space: ffmpeg's ': ' after the URL goes with it (blanking too
        // much is the safe side; an unencoded ':' may be inside a SAS time).
        let line = "https://acct.blob.core.windows.net/videos/in.mp4?sv=2022-11-02&se=2030-01-01T00%3A00Z&sr=b&sp=r&sig=AbC%2Fde%3D: Invalid data found";
        let clean = redact(line);
        assert_eq!(
            clean,
            "https://acct.blob.core.windows.net/videos/in.mp4?sv=2022-11-02&se=REDACTED&sr=b&sp=REDACTED&sig=REDACTED Invalid data found"
        );
    }

    #[test]
    fn s3_presigned_and_fresco_urls_are_blanked() {
        let text = "GET /b/k.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20240101&X-Amz-Signature=deadbeef HTTP/1.1";
        let clean = redact(text);
        assert!(!clean.contains("AKIA"), "{clean}");
        assert!(!clean.contains("deadbeef"), "{clean}");
        assert!(
            clean.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256"),
            "{clean}"
        );
        let fresco = "/v1/objects/in/a.mp4?expires=1700000000&perm=r&kid=ab12&sig=Zm9vYmFy";
        assert_eq!(
            redact(fresco),
            "/v1/objects/in/a.mp4?expires=1700000000&perm=r&kid=ab12&sig=REDACTED"
        );
    }

    #[test]
    fn urls_inside_json_are_blanked() {
        let json =
            r#"{"format": {"filename": "https://h/c/x.mp4?sp=r&sig=SECRET", "nb_streams": 1}}"#;
        let clean = redact(json);
        assert!(!clean.contains("SECRET"), "{clean}");
        assert!(
            clean.contains(r#"sig=REDACTED", "nb_streams": 1"#),
            "{clean}"
        );
    }

    #[test]
    fn user_information_is_blanked() {
        assert_eq!(
            redact("could not open ftp://bob:hunter2@files.example/v.mp4 now"),
            "could not open ftp://REDACTED@files.example/v.mp4 now"
        );
        assert_eq!(
            redact("postgres://fresco:pw@db:5432/fresco"),
            "postgres://REDACTED@db:5432/fresco"
        );
        // An @ in the path is not user information.
        assert_eq!(
            redact("https://h/users/@me/v.mp4"),
            "https://h/users/@me/v.mp4"
        );
    }

    #[test]
    fn harmless_text_is_unchanged() {
        for text in [
            "",
            "frame=  120 fps= 30 q=28.0 size=   1024kB",
            "/srv/in.mp4: Invalid data found when processing input",
            "a?b&c=d ünïcödé ?sig",
            "?sig=",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn a_secret_inside_another_parameters_value_is_found() {
        // A URL passed as a parameter's value, then the fuzzer's case: control bytes and a
        // user:password that the second pass used to find a signature behind.
        assert_eq!(
            redact("https://h/p?next=https://x/y?sig=abc&se=2030"),
            "https://h/p?next=https://x/y?sig=REDACTED&se=REDACTED"
        );
        let fuzzed = "(tt\u{fffd}c://aob&.e=\0\0\x002F:@ari\0(ttp?se=20\0\0e9&\0sp=\0x";
        let once = redact(fuzzed);
        assert!(!once.contains("se=20"), "{once:?}");
        assert_eq!(redact(&once), once);
    }

    #[test]
    fn multibyte_text_around_secrets_is_kept() {
        assert_eq!(redact("é?sig=ü&x=1"), "é?sig=REDACTED&x=1");
    }
}
