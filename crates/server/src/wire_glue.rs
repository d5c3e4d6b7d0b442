//! How `fresco-wire`'s refusals answer: a submission refused for what it says is a 400, with the
//! wire crate's code and message. With these, `?` on the wire crate's checks works in handlers
//! (which answer [`ApiError`]); `fresco_submit` turns them into its rejections itself.

use fresco_wire::InputRejected;

use crate::error::ApiError;

impl From<InputRejected> for ApiError {
    fn from(e: InputRejected) -> Self {
        ApiError::bad_request(e.code, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factory::Rejection;
    use axum::http::StatusCode;

    #[test]
    fn refusals_keep_their_code_and_message_and_answer_400() {
        let refused = || InputRejected::new("path-not-allowed", "input: '/etc/passwd' is outside");
        let api = ApiError::from(refused());
        assert_eq!(api.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            (api.code, api.message.as_str()),
            ("path-not-allowed", "input: '/etc/passwd' is outside")
        );
        let rejection = Rejection::from(refused());
        assert_eq!(crate::factory::status(&rejection), StatusCode::BAD_REQUEST);
        assert!(matches!(
            rejection,
            Rejection::BadField { code: "path-not-allowed", ref message } if message.contains("/etc/passwd")
        ));
    }
}
