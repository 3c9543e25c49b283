//! Example files: TSV and CSV with a header row, and JSON Lines, read into named fields.
//!
//! | format | chosen by | rules |
//! | --- | --- | --- |
//! | TSV | `.tsv`, `.tab`, or a tab in the first line | fields split at tabs, no quoting (GLUE's files); every row has the header's number of fields |
//! | CSV | `.csv`, or anything else | RFC 4180: `,` separators, `"` quotes, `""` a quote inside them, quoted fields may span lines |
//! | JSONL | `.jsonl`, `.ndjson`, `.json`, or a first character `{` | one JSON object per line; strings are taken as they are, numbers and booleans as their JSON text |
//!
//! Blank lines are skipped, a trailing `\r` (CRLF files) is dropped and a UTF-8 byte-order mark is
//! ignored. Errors give the file and the 1-based line of the record: a missing column names the
//! header's columns and the flag that picks another; a JSONL line that is not an object or lacks a
//! field names the line.
//!
//! Non-goals: CSV dialects (other separators or quotes), compressed files, JSON arrays.

use std::path::Path;

use super::TaskError;

/// A field every record must have: the names it may go by (the first one present is used; a
/// header is matched exactly) and the `gpt2` flag that names it, for error messages.
#[derive(Debug, Clone)]
pub struct Column {
    /// Accepted names, in order of preference (e.g. `["sentence", "text"]`).
    pub names: Vec<String>,
    /// The flag that sets it (e.g. `--text-column`).
    pub flag: &'static str,
}

impl Column {
    /// A column with one or several accepted names.
    pub fn new(names: &[&str], flag: &'static str) -> Self {
        Self {
            names: names.iter().map(|s| s.to_string()).collect(),
            flag,
        }
    }

    fn describe(&self) -> String {
        self.names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// One example: its 1-based line in the file and the values of the asked columns, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Line of the record (its first line for a multi-line CSV record).
    pub line: usize,
    /// One value per asked [`Column`].
    pub values: Vec<String>,
}

/// The formats [`read_records`] understands (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tab-separated with a header.
    Tsv,
    /// Comma-separated (RFC 4180) with a header.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// The format of `path` by its extension, else by its first line.
    pub fn detect(path: &Path, text: &str) -> Self {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "tsv" | "tab" => Format::Tsv,
            "csv" => Format::Csv,
            "jsonl" | "ndjson" | "json" => Format::Jsonl,
            _ => {
                let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                if first.trim_start().starts_with('{') {
                    Format::Jsonl
                } else if first.contains('\t') {
                    Format::Tsv
                } else {
                    Format::Csv
                }
            }
        }
    }
}

/// Reads every record of the file at `path` with the values of `columns`.
///
/// Errors: [`TaskError::Io`] (including text that is not UTF-8), [`TaskError::Empty`] when there
/// is no record, [`TaskError::MissingColumn`], [`TaskError::Format`] for a bad row or line.
pub fn read_records(path: &Path, columns: &[Column]) -> Result<Vec<Record>, TaskError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TaskError::Io {
        path: p.clone(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| TaskError::Io {
        path: p.clone(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not valid UTF-8 (first bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        ),
    })?;
    parse_records(&p, &text, Format::detect(path, &text), columns)
}

/// [`read_records`] on text already in memory; `path` only names it in errors.
pub fn parse_records(
    path: &str,
    text: &str,
    format: Format,
    columns: &[Column],
) -> Result<Vec<Record>, TaskError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let records = match format {
        Format::Jsonl => jsonl(path, text, columns)?,
        Format::Tsv | Format::Csv => {
            let rows = if format == Format::Tsv {
                tsv_rows(text)
            } else {
                csv_rows(path, text)?
            };
            table(path, rows, columns)?
        }
    };
    if records.is_empty() {
        return Err(TaskError::Empty { path: path.into() });
    }
    Ok(records)
}

/// (line, fields) of each non-blank line.
fn tsv_rows(text: &str) -> Vec<(usize, Vec<String>)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i, l.split('\t').map(str::to_string).collect()))
        .collect()
}

/// (first line, fields) of each record, RFC 4180.
fn csv_rows(path: &str, text: &str) -> Result<Vec<(usize, Vec<String>)>, TaskError> {
    let mut rows = Vec::new();
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut line, mut start_line) = (1usize, 1usize);
    let (mut quoted, mut was_quoted) = (false, false);
    let mut chars = text.chars().peekable();
    let mut end_row = |fields: &mut Vec<String>, field: &mut String, start: usize| {
        fields.push(std::mem::take(field));
        let row = std::mem::take(fields);
        if !(row.len() == 1 && row[0].trim().is_empty()) {
            rows.push((start, row));
        }
    };
    while let Some(ch) = chars.next() {
        if quoted {
            match ch {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(ch),
            }
            continue;
        }
        match ch {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                end_row(&mut fields, &mut field, start_line);
                was_quoted = false;
                line += 1;
                start_line = line;
            }
            _ if was_quoted => {
                return Err(TaskError::Format {
                    path: path.into(),
                    line,
                    msg: format!("unexpected `{ch}` after a closing quote"),
                })
            }
            _ => field.push(ch),
        }
    }
    if quoted {
        return Err(TaskError::Format {
            path: path.into(),
            line: start_line,
            msg: "a quoted field is never closed".into(),
        });
    }
    if !field.is_empty() || !fields.is_empty() {
        end_row(&mut fields, &mut field, start_line);
    }
    Ok(rows)
}

/// Picks `columns` out of header + rows.
fn table(
    path: &str,
    rows: Vec<(usize, Vec<String>)>,
    columns: &[Column],
) -> Result<Vec<Record>, TaskError> {
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(TaskError::Empty { path: path.into() });
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let idx: Vec<usize> = columns
        .iter()
        .map(|col| {
            col.names
                .iter()
                .find_map(|n| header.iter().position(|h| h == n))
                .ok_or_else(|| TaskError::MissingColumn {
                    path: path.into(),
                    wanted: col.describe(),
                    found: header.join(", "),
                    hint: format!("name it with {}", col.flag),
                })
        })
        .collect::<Result<_, _>>()?;
    rows.map(|(line, fields)| {
        if fields.len() != header.len() {
            return Err(TaskError::Format {
                path: path.into(),
                line,
                msg: format!(
                    "{} fields, but the header has {}",
                    fields.len(),
                    header.len()
                ),
            });
        }
        Ok(Record {
            line,
            values: idx.iter().map(|&i| fields[i].clone()).collect(),
        })
    })
    .collect()
}

fn jsonl(path: &str, text: &str, columns: &[Column]) -> Result<Vec<Record>, TaskError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let bad = |msg: String| TaskError::Format {
            path: path.into(),
            line,
            msg,
        };
        let v: serde_json::Value =
            serde_json::from_str(l).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let serde_json::Value::Object(obj) = v else {
            return Err(bad(format!(
                "expected a JSON object with {}, got {}",
                columns
                    .iter()
                    .map(|c| c.describe())
                    .collect::<Vec<_>>()
                    .join(", "),
                kind(&v)
            )));
        };
        let mut values = Vec::with_capacity(columns.len());
        for col in columns {
            let Some((name, v)) = col.names.iter().find_map(|n| obj.get(n).map(|v| (n, v))) else {
                return Err(bad(format!(
                    "no field {} (fields: {}); name it with {}",
                    col.describe(),
                    obj.keys().cloned().collect::<Vec<_>>().join(", "),
                    col.flag
                )));
            };
            values.push(match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(bad(format!(
                        "field `{name}` is {}, expected a string or a number",
                        kind(other)
                    )))
                }
            });
        }
        out.push(Record { line, values });
    }
    Ok(out)
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<Column> {
        vec![
            Column::new(&["sentence", "text"], "--text-column"),
            Column::new(&["label"], "--label-column"),
        ]
    }

    fn vals(r: &[Record]) -> Vec<(usize, Vec<&str>)> {
        r.iter()
            .map(|r| (r.line, r.values.iter().map(|s| s.as_str()).collect()))
            .collect()
    }

    #[test]
    fn tsv_with_crlf_and_blank_lines() {
        let t = "id\ttext\tlabel\r\n1\tgood film\tpos\r\n\r\n2\tbad\tneg\r\n";
        let r = parse_records("f.tsv", t, Format::Tsv, &cols()).unwrap();
        assert_eq!(
            vals(&r),
            [(2, vec!["good film", "pos"]), (4, vec!["bad", "neg"])]
        );
    }

    #[test]
    fn csv_quotes_commas_and_newlines() {
        let t = "label,sentence\n1,\"a, b\"\n0,\"say \"\"hi\"\"\nnext line\"\n1,plain\n";
        let r = parse_records("f.csv", t, Format::Csv, &cols()).unwrap();
        assert_eq!(
            vals(&r),
            [
                (2, vec!["a, b", "1"]),
                (3, vec!["say \"hi\"\nnext line", "0"]),
                (5, vec!["plain", "1"])
            ]
        );
        let err = parse_records("f.csv", "label,text\n1,\"open\n", Format::Csv, &cols())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f.csv:2") && err.contains("never closed"),
            "{err}"
        );
    }

    #[test]
    fn jsonl_numbers_and_errors_name_the_line() {
        let t = "{\"text\": \"x\", \"label\": 3}\n\n{\"text\": \"y\", \"label\": \"b\"}\n";
        let r = parse_records("f.jsonl", t, Format::Jsonl, &cols()).unwrap();
        assert_eq!(vals(&r), [(1, vec!["x", "3"]), (3, vec!["y", "b"])]);
        let e = parse_records(
            "f.jsonl",
            "{\"text\":\"x\",\"label\":1}\n[1]\n",
            Format::Jsonl,
            &cols(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("f.jsonl:2") && e.contains("an array"), "{e}");
        let e = parse_records("f.jsonl", "{\"text\":\"x\"}\n", Format::Jsonl, &cols())
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.jsonl:1") && e.contains("`label`"), "{e}");
    }

    #[test]
    fn missing_column_and_empty_file() {
        let e = parse_records("f.tsv", "sentence\tstars\nx\t1\n", Format::Tsv, &cols())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`label`") && e.contains("sentence, stars") && e.contains("--label-column"),
            "{e}"
        );
        let e = parse_records("f.tsv", "sentence\tlabel\n", Format::Tsv, &cols()).unwrap_err();
        assert!(matches!(e, TaskError::Empty { .. }), "{e}");
        let e = parse_records("f.tsv", "", Format::Tsv, &cols()).unwrap_err();
        assert!(matches!(e, TaskError::Empty { .. }), "{e}");
        let e = parse_records("f.tsv", "sentence\tlabel\na\tb\tc\n", Format::Tsv, &cols())
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.tsv:2") && e.contains("3 fields"), "{e}");
    }
}
