//! Where events go: JSON lines or compact lines, to stdout and/or a rotated
//! file, and to the API's events stream.
mod background;
mod file;
mod stream;

use std::io::{self, BufWriter, Write};

use vigil_events::{compact, Event};

use background::BackgroundWriter;

pub use file::RotatingFile;
pub use stream::{EventStream, SubscriberGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Compact,
}

/// One destination with its format.
pub struct Sink {
    format: Format,
    writer: BackgroundWriter,
}

impl Sink {
    pub fn stdout(format: Format) -> io::Result<Self> {
        Ok(Sink {
            format,
            writer: BackgroundWriter::spawn(
                "vigil-stdout",
                Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
            )?,
        })
    }

    pub fn file(format: Format, file: RotatingFile) -> io::Result<Self> {
        Ok(Sink {
            format,
            writer: BackgroundWriter::spawn("vigil-export", Box::new(file))?,
        })
    }
}

/// Fans each event out to every sink, serializing once per format.
pub struct Outputs {
    sinks: Vec<Sink>,
    stream: Option<EventStream>,
    json: Vec<u8>,
    json_sinks: usize,
    pub written: u64,
}

impl Outputs {
    pub fn new(sinks: Vec<Sink>, stream: Option<EventStream>) -> Self {
        let json_sinks = sinks.iter().filter(|s| s.format == Format::Json).count();
        Outputs {
            json_sinks,
            sinks,
            stream,
            json: Vec::with_capacity(4096),
            written: 0,
        }
    }

    pub fn write(&mut self, ev: &Event) -> io::Result<()> {
        if let Some(stream) = &self.stream {
            stream.publish(ev);
        }
        let mut compact_line: Option<String> = None;
        self.json.clear();
        for sink in &mut self.sinks {
            match sink.format {
                // The usual case, one JSON sink: serialized straight into its buffer.
                Format::Json if self.json_sinks == 1 => sink.writer.append(|buf| {
                    serde_json::to_writer(&mut *buf, ev)?;
                    buf.push(b'\n');
                    Ok::<(), serde_json::Error>(())
                })?,
                Format::Json => {
                    if self.json.is_empty() {
                        serde_json::to_writer(&mut self.json, ev).map_err(io::Error::other)?;
                        self.json.push(b'\n');
                    }
                    sink.writer.write_all(&self.json)?;
                }
                Format::Compact => {
                    let line = compact_line.get_or_insert_with(|| compact::render(ev) + "\n");
                    sink.writer.write_all(line.as_bytes())?;
                }
            }
        }
        self.written += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        for sink in &mut self.sinks {
            sink.writer.flush()?;
        }
        Ok(())
    }
}
