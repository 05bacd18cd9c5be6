//! A local server that speaks enough of the Telegram Bot API for delivery tests: sendMessage and
//! editMessageText over HTTP/1.1 with JSON bodies, with scripted misbehaviour (429 with
//! retry_after, 500, a dropped connection) and a record of every message it accepted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Accept,
    /// 429 with this retry_after.
    RateLimit(u64),
    ServerError,
    /// Close the connection without an answer.
    Drop,
}

#[derive(Default)]
pub struct State {
    /// What the next sendMessage calls do, in order; then Accept.
    pub script: Vec<Behaviour>,
    /// Accepted messages: (message_id, chat_id, text).
    pub messages: Vec<(i64, String, String)>,
    pub next_id: i64,
    pub send_calls: usize,
    pub edit_calls: usize,
    /// Tokens seen in request paths, to check the right one is used.
    pub tokens: Vec<String>,
}

pub struct BotApi {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

impl BotApi {
    pub fn start(script: Vec<Behaviour>) -> BotApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            script,
            next_id: 100,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || handle(stream, &shared));
            }
        });
        BotApi { url, state }
    }

    pub fn texts(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .messages
            .iter()
            .map(|m| m.2.clone())
            .collect()
    }
}

fn respond(mut stream: &TcpStream, status: &str, body: &serde_json::Value) {
    let body = body.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn handle(stream: TcpStream, shared: &Mutex<State>) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
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
        return;
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let (token, method) = path
        .trim_start_matches("/bot")
        .split_once('/')
        .map(|(t, m)| (t.to_string(), m.to_string()))
        .unwrap_or_default();
    let mut s = shared.lock().unwrap();
    s.tokens.push(token);
    match method.as_str() {
        "sendMessage" => {
            s.send_calls += 1;
            let behaviour = if s.script.is_empty() {
                Behaviour::Accept
            } else {
                s.script.remove(0)
            };
            match behaviour {
                Behaviour::Accept => {
                    s.next_id += 1;
                    let id = s.next_id;
                    let chat = json["chat_id"].as_str().unwrap_or("").to_string();
                    let text = json["text"].as_str().unwrap_or("").to_string();
                    s.messages.push((id, chat, text));
                    respond(
                        &stream,
                        "200 OK",
                        &serde_json::json!({"ok": true, "result": {"message_id": id}}),
                    );
                }
                Behaviour::RateLimit(after) => respond(
                    &stream,
                    "429 Too Many Requests",
                    &serde_json::json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {after}"), "parameters": {"retry_after": after}}),
                ),
                Behaviour::ServerError => respond(
                    &stream,
                    "500 Internal Server Error",
                    &serde_json::json!({"ok": false, "error_code": 500, "description": "Internal Server Error"}),
                ),
                Behaviour::Drop => {}
            }
        }
        "editMessageText" => {
            s.edit_calls += 1;
            let id = json["message_id"].as_i64().unwrap_or(0);
            let text = json["text"].as_str().unwrap_or("");
            match s.messages.iter().find(|m| m.0 == id) {
                Some(m) if m.2 == text => respond(
                    &stream,
                    "400 Bad Request",
                    &serde_json::json!({"ok": false, "error_code": 400, "description": "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"}),
                ),
                Some(_) => respond(
                    &stream,
                    "200 OK",
                    &serde_json::json!({"ok": true, "result": {"message_id": id}}),
                ),
                None => respond(
                    &stream,
                    "400 Bad Request",
                    &serde_json::json!({"ok": false, "error_code": 400, "description": "Bad Request: message to edit not found"}),
                ),
            }
        }
        _ => respond(
            &stream,
            "404 Not Found",
            &serde_json::json!({"ok": false, "error_code": 404, "description": "Not Found"}),
        ),
    }
}
