//! A local server that speaks the Telegram Bot API as delivery sees it, over HTTPS with a
//! certificate from a test CA (as Telegram's is HTTPS, a plain-HTTP stand-in would prove
//! nothing about TLS): sendMessage, forwardMessage, deleteMessage and editMessageText, message
//! ids growing per chat, HTML checked as Telegram checks it (only its tags, balanced; only its
//! entities; at most 4,096 characters once parsed), scripted misbehaviour (429 with
//! retry_after, 500, a dropped connection, an answer lost or late after the message was
//! stored), and a record of every message with whether it was edited or deleted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Accept,
    /// 429 with this retry_after.
    RateLimit(u64),
    ServerError,
    /// Close the connection without an answer, the message not stored.
    Drop,
    /// Store the message, then close the connection without an answer.
    AcceptThenDrop,
    /// Store the message, answer after this long.
    AcceptSlowly(Duration),
    /// Refuse it as Telegram refuses bad HTML, whatever it is.
    RefuseEntities,
    /// 401 with a description that echoes the token and carries terminal escapes.
    HostileRefusal,
}

#[derive(Debug, Clone)]
pub struct Stored {
    pub id: i64,
    pub chat: String,
    /// The text as sent (HTML when parse_mode was HTML).
    pub text: String,
    /// What a reader sees.
    pub plain: String,
    pub deleted: bool,
    pub edited: bool,
}

#[derive(Default)]
pub struct State {
    /// What the next sendMessage calls do, in order; then Accept.
    pub script: Vec<Behaviour>,
    pub messages: Vec<Stored>,
    pub next_id: std::collections::BTreeMap<String, i64>,
    pub send_calls: usize,
    pub edit_calls: usize,
    pub forward_calls: usize,
    /// Tokens seen in request paths, to check the right one is used.
    pub tokens: Vec<String>,
    /// Requests that reached the server without TLS.
    pub plaintext_requests: usize,
    /// The chat protects its content: nothing can be forwarded from it.
    pub protected: bool,
}

pub struct BotApi {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

/// The test CA (`ca.pem`) and the certificate for localhost and 127.0.0.1 it signs, made once
/// per test run by the test bed's own script.
pub fn test_ca() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("patrol-test-ca-{}", std::process::id()));
        let out = std::process::Command::new(crate::support::root().join("scripts/testbed"))
            .args(["ca", dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/testbed ca: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .clone()
}

fn server_config() -> Arc<rustls::ServerConfig> {
    let dir = test_ca();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl BotApi {
    pub fn start(script: Vec<Behaviour>) -> BotApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        let state = Arc::new(Mutex::new(State {
            script,
            ..State::default()
        }));
        let shared = state.clone();
        let tls = server_config();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                let tls = tls.clone();
                std::thread::spawn(move || serve(stream, tls, &shared));
            }
        });
        BotApi { url, state }
    }

    /// The CA file a client must trust to reach this server.
    pub fn ca_file(&self) -> PathBuf {
        test_ca().join("ca.pem")
    }

    /// The texts of the messages in the chats, deleted ones left out.
    pub fn texts(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .messages
            .iter()
            .filter(|m| !m.deleted)
            .map(|m| m.text.clone())
            .collect()
    }

    /// Stores a message as if another program had sent it with the same bot.
    pub fn post(&self, chat: &str, text: &str) -> i64 {
        let mut s = self.state.lock().unwrap();
        store(&mut s, chat, text, text.to_string())
    }
}

fn store(s: &mut State, chat: &str, text: &str, plain: String) -> i64 {
    let next = s.next_id.entry(chat.to_string()).or_insert(100);
    *next += 1;
    let id = *next;
    s.messages.push(Stored {
        id,
        chat: chat.to_string(),
        text: text.to_string(),
        plain,
        deleted: false,
        edited: false,
    });
    id
}

const TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
    "span",
];

/// Parses Bot API HTML as Telegram does: the text a reader sees, or Telegram's refusal.
pub fn parse_html(html: &str) -> Result<String, String> {
    let mut plain = String::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let end = rest
                    .find('>')
                    .ok_or("can't parse entities: unclosed start tag")?;
                let inner = &rest[1..end];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim();
                    match open.pop() {
                        Some(o) if o == name => {}
                        _ => {
                            return Err(format!(
                                "can't parse entities: unmatched end tag \"{name}\""
                            ));
                        }
                    }
                } else {
                    let name = inner.split_whitespace().next().unwrap_or("");
                    if !TAGS.contains(&name) {
                        return Err(format!(
                            "can't parse entities: unsupported start tag \"{name}\""
                        ));
                    }
                    open.push(name.to_string());
                }
                rest = &rest[end + 1..];
            }
            '&' => {
                let end = rest
                    .find(';')
                    .filter(|e| *e <= 10)
                    .ok_or("can't parse entities: unescaped &")?;
                let name = &rest[1..end];
                let decoded = match name {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    _ => name
                        .strip_prefix('#')
                        .and_then(|d| d.parse::<u32>().ok())
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("can't parse entities: unknown entity &{name};"))?,
                };
                plain.push(decoded);
                rest = &rest[end + 1..];
            }
            _ => {
                plain.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if let Some(o) = open.pop() {
        return Err(format!(
            "can't parse entities: can't find end tag corresponding to start tag \"{o}\""
        ));
    }
    Ok(plain.trim().to_string())
}

fn respond(stream: &mut impl Write, status: &str, body: &serde_json::Value) {
    let body = body.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

fn bad_request(stream: &mut impl Write, description: &str) {
    respond(
        stream,
        "400 Bad Request",
        &serde_json::json!({"ok": false, "error_code": 400, "description": format!("Bad Request: {description}")}),
    );
}

fn serve(tcp: TcpStream, tls: Arc<rustls::ServerConfig>, shared: &Mutex<State>) {
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).is_ok() && first[0] != 0x16 {
        // Not a TLS ClientHello: a client speaking plain HTTP to an HTTPS API.
        shared.lock().unwrap().plaintext_requests += 1;
        return;
    }
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    handle(&mut stream, shared);
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

type Stream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

fn handle(stream: &mut Stream, shared: &Mutex<State>) {
    let Some((path, body)) = read_request(stream) else {
        return;
    };
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let (token, method) = path
        .trim_start_matches("/bot")
        .split_once('/')
        .map(|(t, m)| (t.to_string(), m.to_string()))
        .unwrap_or_default();
    let chat = json["chat_id"].as_str().unwrap_or("").to_string();
    let mut s = shared.lock().unwrap();
    s.tokens.push(token);
    match method.as_str() {
        "sendMessage" => send_message(stream, s, &json, &chat),
        "forwardMessage" => forward_message(stream, &mut s, &json, &chat),
        "deleteMessage" => delete_message(stream, &mut s, &json, &chat),
        "editMessageText" => edit_message_text(stream, &mut s, &json, &chat),
        _ => respond(
            stream,
            "404 Not Found",
            &serde_json::json!({"ok": false, "error_code": 404, "description": "Not Found"}),
        ),
    }
}

/// The request's path and body; `None` when the client went away mid-request.
fn read_request(stream: &mut Stream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(&mut *stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return None;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return None;
    }
    Some((path, body))
}

/// sendMessage as scripted: the next behaviour of the script, else accepted when Telegram
/// would accept it. Takes the lock by value, to let go of it before a slow answer.
fn send_message(
    stream: &mut Stream,
    mut s: std::sync::MutexGuard<'_, State>,
    json: &serde_json::Value,
    chat: &str,
) {
    s.send_calls += 1;
    let behaviour = if s.script.is_empty() {
        Behaviour::Accept
    } else {
        s.script.remove(0)
    };
    let text = json["text"].as_str().unwrap_or("").to_string();
    let parsed = if json["parse_mode"] == "HTML" {
        parse_html(&text)
    } else {
        Ok(text.trim().to_string())
    };
    match behaviour {
        Behaviour::RateLimit(after) => respond(
            stream,
            "429 Too Many Requests",
            &serde_json::json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {after}"), "parameters": {"retry_after": after}}),
        ),
        Behaviour::ServerError => respond(
            stream,
            "500 Internal Server Error",
            &serde_json::json!({"ok": false, "error_code": 500, "description": "Internal Server Error"}),
        ),
        Behaviour::Drop => {}
        Behaviour::RefuseEntities => bad_request(stream, "can't parse entities: scripted refusal"),
        Behaviour::HostileRefusal => {
            let token = s.tokens.last().cloned().unwrap_or_default();
            respond(
                stream,
                "401 Unauthorized",
                &serde_json::json!({"ok": false, "error_code": 401, "description": format!("Unauthorized: bad token {token} \u{1b}]0;PWNED\u{7}\u{1b}[31mRED\r")}),
            )
        }
        accepted => {
            let plain = match parsed {
                Ok(p) => p,
                Err(e) => return bad_request(stream, &e),
            };
            if plain.is_empty() {
                return bad_request(stream, "message text is empty");
            }
            if plain.chars().count() > 4096 {
                return bad_request(stream, "message is too long");
            }
            let id = store(&mut s, chat, &text, plain);
            drop(s);
            match accepted {
                Behaviour::AcceptThenDrop => {}
                Behaviour::AcceptSlowly(delay) => {
                    std::thread::sleep(delay);
                    respond(
                        stream,
                        "200 OK",
                        &serde_json::json!({"ok": true, "result": {"message_id": id}}),
                    );
                }
                _ => respond(
                    stream,
                    "200 OK",
                    &serde_json::json!({"ok": true, "result": {"message_id": id}}),
                ),
            }
        }
    }
}

/// forwardMessage: the copy answers with the original's text, which is how patrol reads a
/// message; refused when the chat protects its content.
fn forward_message(stream: &mut Stream, s: &mut State, json: &serde_json::Value, chat: &str) {
    s.forward_calls += 1;
    if s.protected {
        return bad_request(stream, "message can't be forwarded");
    }
    let id = json["message_id"].as_i64().unwrap_or(0);
    let from = json["from_chat_id"].as_str().unwrap_or("").to_string();
    let Some(original) = s
        .messages
        .iter()
        .find(|m| m.id == id && m.chat == from && !m.deleted)
        .cloned()
    else {
        return bad_request(stream, "message to forward not found");
    };
    let copy = store(s, chat, &original.plain, original.plain.clone());
    respond(
        stream,
        "200 OK",
        &serde_json::json!({"ok": true, "result": {"message_id": copy, "text": original.plain, "forward_origin": {"type": "chat"}}}),
    );
}

fn delete_message(stream: &mut Stream, s: &mut State, json: &serde_json::Value, chat: &str) {
    let id = json["message_id"].as_i64().unwrap_or(0);
    match s
        .messages
        .iter_mut()
        .find(|m| m.id == id && m.chat == chat && !m.deleted)
    {
        Some(m) => {
            m.deleted = true;
            respond(
                stream,
                "200 OK",
                &serde_json::json!({"ok": true, "result": true}),
            );
        }
        None => bad_request(stream, "message to delete not found"),
    }
}

/// editMessageText, refusing an edit that changes nothing as Telegram does.
fn edit_message_text(stream: &mut Stream, s: &mut State, json: &serde_json::Value, chat: &str) {
    s.edit_calls += 1;
    let id = json["message_id"].as_i64().unwrap_or(0);
    let text = json["text"].as_str().unwrap_or("").to_string();
    match s
        .messages
        .iter_mut()
        .find(|m| m.id == id && m.chat == chat && !m.deleted)
    {
        Some(m) if m.text == text => bad_request(
            stream,
            "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        ),
        Some(m) => {
            m.text = text.clone();
            m.plain = parse_html(&text).unwrap_or(text);
            m.edited = true;
            respond(
                stream,
                "200 OK",
                &serde_json::json!({"ok": true, "result": {"message_id": id}}),
            );
        }
        None => bad_request(stream, "message to edit not found"),
    }
}
