//! A minimal HTTP/1.1 client over `std::net::TcpStream` for the load generator: one
//! keep-alive connection per client thread, `GET` requests, `Content-Length`, chunked or
//! close-delimited responses. Small on purpose: it must cost little next to the server it measures.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One persistent connection.
#[derive(Debug)]
pub struct Conn {
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
    line: String,
}

/// A response: status and body length (the body itself is kept only when asked for).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub body_len: usize,
}

impl Conn {
    /// Connects to `addr`, ready to send `GET path`.
    pub fn open(addr: SocketAddr, path: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/openmetrics-text; version=1.0.0,text/plain;q=0.5\r\n\r\n").into_bytes();
        Ok(Self {
            reader: BufReader::with_capacity(256 * 1024, stream),
            request,
            line: String::new(),
        })
    }

    /// Sends the request and reads the whole response. With `keep`, the body is returned in
    /// `Response::body` (reusing `buf`'s allocation); otherwise it is read and dropped.
    pub fn get(&mut self, buf: &mut Vec<u8>, keep: bool) -> Result<Response> {
        self.reader.get_mut().write_all(&self.request)?;
        self.line.clear();
        if self.reader.read_line(&mut self.line)? == 0 {
            bail!("connection closed before a response");
        }
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {:?}", self.line))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                bail!("connection closed in the headers");
            }
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = Some(v.trim().parse::<usize>().context("bad content-length")?);
                } else if k.eq_ignore_ascii_case("transfer-encoding")
                    && v.trim().eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                }
            }
        }
        buf.clear();
        let body_len = if chunked {
            self.read_chunked(buf)?
        } else if let Some(n) = length {
            buf.resize(n, 0);
            self.reader.read_exact(buf)?;
            n
        } else {
            // Delimited by the server closing the connection (HTTP/1.0 style).
            self.reader.read_to_end(buf)?
        };
        let body = if keep {
            std::mem::take(buf)
        } else {
            Vec::new()
        };
        Ok(Response {
            status,
            body,
            body_len,
        })
    }

    fn read_chunked(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        loop {
            self.line.clear();
            self.reader.read_line(&mut self.line)?;
            let size =
                usize::from_str_radix(self.line.trim().split(';').next().unwrap_or("").trim(), 16)
                    .context("bad chunk size")?;
            if size == 0 {
                // Trailers (none expected) end with an empty line.
                loop {
                    self.line.clear();
                    if self.reader.read_line(&mut self.line)? == 0
                        || self.line.trim_end().is_empty()
                    {
                        return Ok(buf.len());
                    }
                }
            }
            let start = buf.len();
            buf.resize(start + size, 0);
            self.reader.read_exact(&mut buf[start..])?;
            let mut crlf = [0u8; 2];
            self.reader.read_exact(&mut crlf)?;
        }
    }
}

/// One `GET` on a fresh connection; the body as text.
pub fn get_once(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut c = Conn::open(addr, path)?;
    let mut buf = Vec::new();
    let r = c.get(&mut buf, true)?;
    Ok((r.status, String::from_utf8_lossy(&r.body).into_owned()))
}
