//! Push triggers: storage events that say "an object was created", parsed into object URLs.
//! Pure functions over the JSON bodies, as the services document them, tested with fixtures.
//!
//! - **Azure Event Grid** (Event Grid schema): an array of events. A
//!   `Microsoft.EventGrid.SubscriptionValidationEvent` carries `data.validationCode`, which the
//!   endpoint echoes back as `validationResponse` to prove it wants the events; a
//!   `Microsoft.Storage.BlobCreated` event carries `data.url`
//!   (`https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH`) and `data.eTag`.
//! - **S3 through SNS**: a `SubscriptionConfirmation` (confirmed by fetching its `SubscribeURL`)
//!   or a `Notification` whose `Message` is the S3 event JSON as a string, with
//!   `Records[].s3.bucket.name`, `.object.key` (URL-encoded, `+` for spaces) and `.object.eTag`.
//! - **S3 through EventBridge**: `"source": "aws.s3"`, `"detail-type": "Object Created"`, with
//!   `detail.bucket.name`, `detail.object.key` and `detail.object.etag`.

use serde_json::Value;

/// An object a storage service says was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedObject {
    /// `az://CONTAINER/PATH` or `s3://BUCKET/KEY`.
    pub url: String,
    /// Its version tag, which makes the trigger idempotent per upload.
    pub etag: String,
}

/// What an event body asks of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventAction {
    /// Echo this code (Event Grid's subscription handshake).
    Validate { code: String },
    /// Fetch this URL to confirm the subscription (SNS's handshake): as parsed and checked by
    /// [`check_sns_url`], fetched as is.
    ConfirmSubscription { url: String },
    /// Make a job of each.
    Created(Vec<CreatedObject>),
}

/// Why a body is refused (400, nothing done).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadEvent(pub String);

fn field<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Result<&'a str, BadEvent> {
    field(value, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| BadEvent(format!("the event has no text field {}", path.join("."))))
}

/// An Event Grid delivery: an array of events in the Event Grid schema.
pub fn parse_event_grid(body: &Value) -> Result<EventAction, BadEvent> {
    let events = body
        .as_array()
        .ok_or_else(|| BadEvent("an Event Grid delivery is a JSON array of events".into()))?;
    if events.is_empty() || events.len() > 5000 {
        return Err(BadEvent(format!(
            "an Event Grid delivery holds 1 to 5000 events, not {}",
            events.len()
        )));
    }
    let mut created = Vec::new();
    for event in events {
        let kind = text(event, &["eventType"])?;
        match kind {
            "Microsoft.EventGrid.SubscriptionValidationEvent" => {
                let code = text(event, &["data", "validationCode"])?;
                return Ok(EventAction::Validate { code: code.into() });
            }
            "Microsoft.Storage.BlobCreated" => {
                let url = text(event, &["data", "url"])?;
                let etag = text(event, &["data", "eTag"])?;
                created.push(CreatedObject {
                    url: blob_url_to_az(url)?,
                    etag: etag.trim_matches('"').to_string(),
                });
            }
            // Other events (deletions, renames) are not ours to act on.
            _ => {}
        }
    }
    Ok(EventAction::Created(created))
}

/// `https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH` (or an emulator's
/// `http://HOST:PORT/ACCOUNT/CONTAINER/PATH`) as `az://CONTAINER/PATH`.
fn blob_url_to_az(url: &str) -> Result<String, BadEvent> {
    let bad = || BadEvent(format!("data.url is not a blob URL: {url}"));
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let (host, path) = rest.split_once('/').ok_or_else(bad)?;
    let path = if host.contains(".blob.") {
        path
    } else {
        // Azurite and other emulators put the account first in the path.
        path.split_once('/').map(|(_, p)| p).ok_or_else(bad)?
    };
    let (container, blob) = path.split_once('/').ok_or_else(bad)?;
    if container.is_empty() || blob.is_empty() || blob.split('/').any(|s| s == "..") {
        return Err(bad());
    }
    Ok(format!("az://{container}/{}", percent_decode(blob, false)?))
}

/// An SNS delivery (confirmation or notification) or an EventBridge event, for S3.
pub fn parse_s3(body: &Value) -> Result<EventAction, BadEvent> {
    if let Some(kind) = body.get("Type").and_then(Value::as_str) {
        return match kind {
            "SubscriptionConfirmation" => {
                let url = check_sns_url(text(body, &["SubscribeURL"])?)?;
                Ok(EventAction::ConfirmSubscription { url: url.into() })
            }
            "Notification" => {
                let message = text(body, &["Message"])?;
                let inner: Value = serde_json::from_str(message)
                    .map_err(|e| BadEvent(format!("the SNS Message is not S3 event JSON: {e}")))?;
                s3_records(&inner)
            }
            "UnsubscribeConfirmation" => Ok(EventAction::Created(Vec::new())),
            other => Err(BadEvent(format!("unknown SNS message type {other}"))),
        };
    }
    if body.get("source").and_then(Value::as_str) == Some("aws.s3") {
        if body.get("detail-type").and_then(Value::as_str) != Some("Object Created") {
            return Ok(EventAction::Created(Vec::new()));
        }
        let bucket = text(body, &["detail", "bucket", "name"])?;
        let key = text(body, &["detail", "object", "key"])?;
        let etag = text(body, &["detail", "object", "etag"])?;
        return Ok(EventAction::Created(vec![s3_object(
            bucket, key, etag, false,
        )?]));
    }
    Err(BadEvent(
        "not an SNS message (Type) nor an EventBridge S3 event (source aws.s3)".into(),
    ))
}

fn s3_records(event: &Value) -> Result<EventAction, BadEvent> {
    if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(EventAction::Created(Vec::new()));
    }
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| BadEvent("the S3 event has no Records".into()))?;
    let mut created = Vec::new();
    for record in records {
        let name = text(record, &["eventName"])?;
        if !name.starts_with("ObjectCreated:") {
            continue;
        }
        let bucket = text(record, &["s3", "bucket", "name"])?;
        let key = text(record, &["s3", "object", "key"])?;
        let etag = text(record, &["s3", "object", "eTag"])?;
        // Keys in S3 notifications are URL-encoded, with '+' for spaces.
        created.push(s3_object(bucket, key, etag, true)?);
    }
    Ok(EventAction::Created(created))
}

fn s3_object(
    bucket: &str,
    key: &str,
    etag: &str,
    plus_is_space: bool,
) -> Result<CreatedObject, BadEvent> {
    let key = percent_decode(key, plus_is_space)?;
    if key.split('/').any(|s| s == "..") || key.starts_with('/') {
        return Err(BadEvent(format!("object key {key} is not a plain key")));
    }
    Ok(CreatedObject {
        url: format!("s3://{bucket}/{key}"),
        etag: etag.trim_matches('"').to_string(),
    })
}

/// SNS confirmation URLs are fetched by the server: only AWS's own SNS endpoints, over https.
///
/// The URL is parsed as the HTTP client parses it, and the parsed URL is what gets fetched, so
/// the check and the request cannot disagree on the host. The text must also spell the host
/// exactly as parsed (lowercase, no trailing dot, no percent-encoding, no IDN) and end it with
/// `/` or the end: characters that a URL parser reads as the end of the host (`?`, `#`, `\`)
/// or as userinfo (`@`) are refused rather than reasoned about.
pub fn check_sns_url(text: &str) -> Result<url::Url, BadEvent> {
    let refuse = |why: &str| {
        BadEvent(format!(
            "SubscribeURL is not an https URL of AWS SNS (https://sns.REGION.amazonaws.com/...): {why}"
        ))
    };
    if text.len() > 4096 {
        return Err(refuse("longer than 4096 bytes"));
    }
    let url = url::Url::parse(text).map_err(|_| refuse("not a URL"))?;
    if url.scheme() != "https" {
        return Err(refuse("not https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("it has a user name or password"));
    }
    if url.port().is_some() {
        return Err(refuse("it names a port"));
    }
    let host = match url.host() {
        Some(url::Host::Domain(host)) => host,
        _ => return Err(refuse("its host is not a domain name")),
    };
    if !is_sns_host(host) {
        return Err(refuse("its host is not sns.REGION.amazonaws.com"));
    }
    let rest = text
        .strip_prefix("https://")
        .and_then(|rest| rest.strip_prefix(host))
        .ok_or_else(|| refuse("its host is not spelled as sns.REGION.amazonaws.com"))?;
    if !(rest.is_empty() || rest.starts_with('/')) || rest.contains('\\') {
        return Err(refuse("its host does not end with '/'"));
    }
    Ok(url)
}

/// `sns.REGION.amazonaws.com` (or `.amazonaws.com.cn`), REGION like `us-east-1` or
/// `us-gov-west-1`: lowercase letters in two or more dash-separated words, then a number.
fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"));
    let Some(region) = region else { return false };
    let words: Vec<&str> = region.split('-').collect();
    let Some((number, names)) = words.split_last() else {
        return false;
    };
    names.len() >= 2
        && names[0].len() == 2
        && names
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, BadEvent> {
    // S3 writes a space as '+' and a '+' as %2B, so the pluses go first.
    let spaced;
    let text = if plus_is_space {
        spaced = text.replace('+', " ");
        spaced.as_str()
    } else {
        text
    };
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map_err(|_| BadEvent(format!("{text} is not UTF-8 once decoded")))?;
    if decoded.contains('\0') {
        return Err(BadEvent("a key holds a NUL".into()));
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_grid_validation_and_blob_created() {
        let validation = json!([{
            "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
            "topic": "/subscriptions/xx/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
            "subject": "",
            "data": { "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
                      "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/x/validate?id=y" },
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2018-01-25T22:12:19.4556811Z",
            "metadataVersion": "1",
            "dataVersion": "1"
        }]);
        assert_eq!(
            parse_event_grid(&validation).unwrap(),
            EventAction::Validate {
                code: "512d38b6-c7b8-40c8-89fe-f46f9e9622b6".into()
            }
        );
        let created = json!([{
            "topic": "/subscriptions/xx/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
            "subject": "/blobServices/default/containers/videos/blobs/in/my%20clip.mp4",
            "eventType": "Microsoft.Storage.BlobCreated",
            "eventTime": "2017-06-26T18:41:00.9584103Z",
            "id": "831e1650-001e-001b-66ab-eeb76e069631",
            "data": {
                "api": "PutBlockList",
                "eTag": "\"0x8D4BCC2E4835CD0\"",
                "contentType": "video/mp4",
                "contentLength": 524288,
                "blobType": "BlockBlob",
                "url": "https://acct.blob.core.windows.net/videos/in/my%20clip.mp4",
                "sequencer": "00000000000004420000000000028963"
            },
            "dataVersion": "",
            "metadataVersion": "1"
        }]);
        assert_eq!(
            parse_event_grid(&created).unwrap(),
            EventAction::Created(vec![CreatedObject {
                url: "az://videos/in/my clip.mp4".into(),
                etag: "0x8D4BCC2E4835CD0".into(),
            }])
        );
        let azurite = json!([{ "eventType": "Microsoft.Storage.BlobCreated",
            "data": { "url": "http://127.0.0.1:10000/devstoreaccount1/c/a.mp4", "eTag": "e1" } }]);
        assert_eq!(
            parse_event_grid(&azurite).unwrap(),
            EventAction::Created(vec![CreatedObject {
                url: "az://c/a.mp4".into(),
                etag: "e1".into()
            }])
        );
    }

    #[test]
    fn malformed_event_grid_bodies_are_refused() {
        for body in [
            json!({}),
            json!([]),
            json!([{}]),
            json!([{ "eventType": "Microsoft.Storage.BlobCreated", "data": {} }]),
            json!([{ "eventType": "Microsoft.Storage.BlobCreated",
                     "data": { "url": "ftp://x/c/a.mp4", "eTag": "e" } }]),
            json!([{ "eventType": "Microsoft.Storage.BlobCreated",
                     "data": { "url": "https://a.blob.core.windows.net/c/../x", "eTag": "e" } }]),
            json!([{ "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {} }]),
        ] {
            assert!(parse_event_grid(&body).is_err(), "{body}");
        }
    }

    #[test]
    fn s3_through_sns_and_eventbridge() {
        let s3_event = json!({ "Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": { "s3SchemaVersion": "1.0", "configurationId": "fresco",
                    "bucket": { "name": "media", "arn": "arn:aws:s3:::media" },
                    "object": { "key": "in/my+clip%281%29.mp4", "size": 1024,
                                "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0A1B2C3D4E5F678901" } }
        }]});
        let sns = json!({
            "Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:fresco", "Subject": "Amazon S3 Notification",
            "Message": s3_event.to_string(), "Timestamp": "2026-01-01T00:00:00.000Z",
            "SignatureVersion": "1", "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
        });
        assert_eq!(
            parse_s3(&sns).unwrap(),
            EventAction::Created(vec![CreatedObject {
                url: "s3://media/in/my clip(1).mp4".into(),
                etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
            }])
        );
        let confirm = json!({ "Type": "SubscriptionConfirmation", "Token": "t",
            "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=t" });
        assert!(matches!(
            parse_s3(&confirm).unwrap(),
            EventAction::ConfirmSubscription { .. }
        ));
        let eventbridge = json!({ "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created", "source": "aws.s3", "account": "111122223333",
            "time": "2021-11-12T00:00:00Z", "region": "ca-central-1", "resources": ["arn:aws:s3:::media"],
            "detail": { "version": "0", "bucket": { "name": "media" },
                        "object": { "key": "in/clip.mp4", "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184" },
                        "reason": "PutObject" } });
        assert_eq!(
            parse_s3(&eventbridge).unwrap(),
            EventAction::Created(vec![CreatedObject {
                url: "s3://media/in/clip.mp4".into(),
                etag: "b1946ac92492d2347c6235b4d2611184".into(),
            }])
        );
    }

    #[test]
    fn sns_urls_are_checked_as_parsed() {
        for good in [
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:t&Token=2336",
            "https://sns.us-gov-west-1.amazonaws.com/?Action=ConfirmSubscription",
            "https://sns.cn-north-1.amazonaws.com.cn/",
            "https://sns.eu-central-1.amazonaws.com",
        ] {
            let url = check_sns_url(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(url.scheme(), "https");
        }
        for bad in [
            "https://sns.us-east-1.amazonaws.com?@evil.example/",
            "https://sns.us-east-1.amazonaws.com#@evil.example/",
            "https://sns.us-east-1.amazonaws.com\\@evil.example/",
            "https://sns.us-east-1.amazonaws.com\\.evil.example/",
            "https://sns.us-east-1.amazonaws.com@evil.example/",
            "https://user@sns.us-east-1.amazonaws.com/",
            "https://user:pw@sns.us-east-1.amazonaws.com/",
            "https://sns.us-east-1.amazonaws.com:8443/",
            "https://sns.us-east-1.amazonaws.com:443/",
            "http://sns.us-east-1.amazonaws.com/",
            "HTTPS://sns.us-east-1.amazonaws.com/",
            "https://SNS.US-EAST-1.AMAZONAWS.COM/",
            "https://sns.us-east-1.amazonaws.com./",
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://[::1]/",
            "https://sns.x.amazonaws.com.evil.example/",
            "https://sns.us-east-1.amazonaws.com.evil.example/",
            "https://sns.us-east-1.amazonaws%2ecom/",
            "https://%73ns.us-east-1.amazonaws.com/",
            "https://sns.us-east-1.amazonaws.c\u{43f}m/",
            "https://xn--sns-.us-east-1.amazonaws.com/",
            "https://sns..amazonaws.com/",
            "https://sns.amazonaws.com/",
            "https://evil.example/sns.us-east-1.amazonaws.com/",
            "https://sns.us-east-1.amazonaws.com\t/",
            " https://sns.us-east-1.amazonaws.com/",
            "//sns.us-east-1.amazonaws.com/",
        ] {
            assert!(check_sns_url(bad).is_err(), "{bad} was allowed");
        }
    }

    #[test]
    fn malformed_or_dangerous_s3_bodies_are_refused() {
        for body in [
            json!({}),
            json!({ "Type": "Notification", "Message": "not json" }),
            json!({ "Type": "Notification", "Message": "{}" }),
            json!({ "Type": "SubscriptionConfirmation", "SubscribeURL": "http://169.254.169.254/latest" }),
            json!({ "Type": "SubscriptionConfirmation", "SubscribeURL": "https://evil.example/sns.amazonaws.com" }),
            json!({ "source": "aws.s3", "detail-type": "Object Created", "detail": {} }),
            json!({ "source": "aws.s3", "detail-type": "Object Created",
                    "detail": { "bucket": { "name": "b" }, "object": { "key": "../x", "etag": "e" } } }),
        ] {
            assert!(parse_s3(&body).is_err(), "{body}");
        }
    }
}
