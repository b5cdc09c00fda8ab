//! `fleetpoll server import FILE`: register servers from a CSV inventory. Each row is
//! validated and added exactly like `server add` (through `ops::add_server`); a bad row is
//! reported with its line number and field, and the others are still imported. Names
//! already registered are skipped, so importing the same file twice changes nothing.
//!
//! Format (RFC 4180: fields with commas, quotes or line breaks are double-quoted):
//!
//! ```text
//! name,host,port,user,key_path,tags
//! web-1,10.0.0.5,22,monitor,/home/ops/.ssh/fleetpoll,prod;web
//! ```
//!
//! Columns may come in any order; each of the six is required, `key_passphrase_env` may be
//! added, any other column is an error. `tags` holds tags separated by `;` (a tag cannot
//! contain one), empty for none. A relative `key_path` is relative to the CSV file's
//! directory. Blank lines are ignored.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::inventory::NewServer;
use crate::ops::{self, OpsError};
use crate::store::{Store, StoreError};

/// The header of an inventory with the six required columns, as `sim-fleet` writes it.
pub const CSV_HEADER: &str = "name,host,port,user,key_path,tags";
/// The separator between tags inside the `tags` cell (tags themselves cannot contain it).
pub const TAG_SEPARATOR: char = ';';

/// Quotes a field for writing when it holds a comma, quote or line break (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The columns every inventory has.
pub const REQUIRED_COLUMNS: &[&str] = &["name", "host", "port", "user", "key_path", "tags"];
/// Columns an inventory may add.
pub const OPTIONAL_COLUMNS: &[&str] = &["key_passphrase_env"];

/// Why nothing was imported: the file as a whole cannot be read, or the database failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The header lacks a column, names an unknown one, or names one twice.
    #[error("line 1: header: {0}")]
    Header(String),
    /// The file is not CSV (an unterminated quote).
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A row that could not be imported, named by its line and field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.field, self.message)
    }
}

/// A row left alone because its name is already registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub line: usize,
    pub name: String,
}

/// What an import did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Names added (or that would be), in file order.
    pub added: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub failed: Vec<RowError>,
}

/// A data row: its line number and the registration it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: usize,
    pub server: NewServer,
}

/// Reads and imports `path`.
///
/// # Errors
/// The file cannot be read, its header is wrong, or the database fails. Bad rows are not
/// errors: they are in the report.
pub async fn import_file(
    store: &Store,
    path: &Path,
    actor: &crate::activity::Actor,
    dry_run: bool,
) -> Result<ImportReport, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    import(store, &text, base, actor, dry_run).await
}

/// Imports CSV `text`; relative key paths are taken from `base_dir`.
///
/// # Errors
/// As [`import_file`].
pub async fn import(
    store: &Store,
    text: &str,
    base_dir: &Path,
    actor: &crate::activity::Actor,
    dry_run: bool,
) -> Result<ImportReport, ImportError> {
    let rows = parse(text, base_dir)?;
    let mut report = ImportReport {
        dry_run,
        ..Default::default()
    };
    let registered: HashSet<String> = store.servers().await?.into_iter().map(|s| s.name).collect();
    let mut in_file: HashSet<String> = HashSet::new();
    for row in rows {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                report.failed.push(e);
                continue;
            }
        };
        let name = row.server.name.clone();
        if registered.contains(&name) {
            report.skipped.push(Skipped {
                line: row.line,
                name,
            });
            continue;
        }
        if !in_file.insert(name.clone()) {
            report.failed.push(RowError {
                line: row.line,
                field: "name".into(),
                message: format!("'{name}' appears on an earlier line of this file"),
            });
            continue;
        }
        if dry_run {
            match row.server.validate() {
                Ok(()) => report.added.push(name),
                Err(e) => report.failed.push(RowError {
                    line: row.line,
                    field: e.field.into(),
                    message: e.message,
                }),
            }
            continue;
        }
        match ops::add_server(store, row.server, actor).await {
            Ok(s) => report.added.push(s.name),
            Err(OpsError::Invalid(e)) => report.failed.push(RowError {
                line: row.line,
                field: e.field.into(),
                message: e.message,
            }),
            // Registered meanwhile by someone else: the same as registered before.
            Err(OpsError::Store(StoreError::Conflict { field: "name", .. })) => {
                report.skipped.push(Skipped {
                    line: row.line,
                    name,
                })
            }
            Err(OpsError::Store(StoreError::Conflict { field, value })) => {
                report.failed.push(RowError {
                    line: row.line,
                    field: field.into(),
                    message: format!("'{value}' is already taken"),
                })
            }
            Err(OpsError::Store(e)) => return Err(e.into()),
            // Rows of an import name key paths; a stored key never comes this way.
            Err(OpsError::Vault(e)) => report.failed.push(RowError {
                line: row.line,
                field: "key".into(),
                message: e.to_string(),
            }),
        }
    }
    Ok(report)
}

/// Parses the inventory into rows (or row errors), checking the header first.
///
/// # Errors
/// A bad header or an unterminated quote.
pub fn parse(text: &str, base_dir: &Path) -> Result<Vec<Result<Row, RowError>>, ImportError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = records(text)?.into_iter();
    let Some((_, header)) = records.next() else {
        return Err(ImportError::Header(format!(
            "the file is empty; expected the header '{}'",
            REQUIRED_COLUMNS.join(",")
        )));
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let mut seen = HashSet::new();
    for h in &header {
        if !REQUIRED_COLUMNS.contains(&h.as_str()) && !OPTIONAL_COLUMNS.contains(&h.as_str()) {
            return Err(ImportError::Header(format!(
                "unknown column '{h}' (columns: {}, optionally {})",
                REQUIRED_COLUMNS.join(","),
                OPTIONAL_COLUMNS.join(",")
            )));
        }
        if !seen.insert(h.as_str()) {
            return Err(ImportError::Header(format!("column '{h}' appears twice")));
        }
    }
    if let Some(missing) = REQUIRED_COLUMNS.iter().find(|c| !seen.contains(*c)) {
        return Err(ImportError::Header(format!("missing column '{missing}'")));
    }
    let col = |name: &str| header.iter().position(|h| h == name);
    let idx = |name: &str| col(name).unwrap_or(usize::MAX);
    let (name, host, port, user, key, tags) = (
        idx("name"),
        idx("host"),
        idx("port"),
        idx("user"),
        idx("key_path"),
        idx("tags"),
    );
    let passphrase = col("key_passphrase_env");
    let rows = records
        .map(|(line, fields)| {
            let err = |field: &str, message: String| RowError {
                line,
                field: field.into(),
                message,
            };
            if fields.len() != header.len() {
                return Err(err(
                    "row",
                    format!(
                        "{} fields where the header has {} columns",
                        fields.len(),
                        header.len()
                    ),
                ));
            }
            let get = |i: usize| fields[i].trim().to_string();
            let port_text = get(port);
            let port = port_text.parse::<u16>().map_err(|_| {
                err(
                    "port",
                    format!("'{port_text}' is not a port: must be between 1 and 65535"),
                )
            })?;
            let key_text = get(key);
            let key_path = if key_text.is_empty() {
                String::new()
            } else {
                absolute_key_path(base_dir, &key_text)
            };
            Ok(Row {
                line,
                server: NewServer {
                    name: get(name),
                    host: get(host),
                    port,
                    user: get(user),
                    key_path,
                    key_material: None,
                    key_stored: false,
                    key_passphrase_env: passphrase.map(get).filter(|v| !v.is_empty()),
                    tags: get(tags)
                        .split(TAG_SEPARATOR)
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(String::from)
                        .collect(),
                    enabled: true,
                },
            })
        })
        .map(|r| {
            // The same checks as `server add` that need no file system come first, so a
            // row with a bad port and a bad name names the first bad column.
            r.and_then(|row| match row.server.validate_syntax() {
                Ok(()) => Ok(row),
                Err(e) => Err(RowError {
                    line: row.line,
                    field: e.field.into(),
                    message: e.message,
                }),
            })
        })
        .collect();
    Ok(rows)
}

/// An absolute path, like `server add` stores (symlinks resolved when the file exists).
fn absolute_key_path(base_dir: &Path, key: &str) -> String {
    let p = Path::new(key);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    };
    std::fs::canonicalize(&joined)
        .or_else(|_| std::path::absolute(&joined))
        .unwrap_or(joined)
        .to_string_lossy()
        .into_owned()
}

/// Splits RFC 4180 CSV into records, each with the line it starts on; blank lines are
/// skipped. A quote inside an unquoted field is kept as text.
fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, ImportError> {
    let mut out = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut start = 1;
    let mut quoted = false;
    let mut quote_opened_on = 0;
    let mut chars = text.chars().peekable();
    let mut end_record = |fields: &mut Vec<String>, field: &mut String, start: usize| {
        fields.push(std::mem::take(field));
        let rec = std::mem::take(fields);
        if !(rec.len() == 1 && rec[0].trim().is_empty()) {
            out.push((start, rec));
        }
    };
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.trim().is_empty() => {
                field.clear();
                quoted = true;
                quote_opened_on = line;
            }
            ',' => fields.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                end_record(&mut fields, &mut field, start);
                line += 1;
                start = line;
            }
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(ImportError::Syntax {
            line: quote_opened_on,
            message: "a quoted field is never closed".into(),
        });
    }
    if !field.is_empty() || !fields.is_empty() {
        end_record(&mut fields, &mut field, start);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    const HEADER: &str = "name,host,port,user,key_path,tags\n";

    fn rows(text: &str) -> Vec<Result<Row, RowError>> {
        parse(text, Path::new("/inv")).expect("header ok")
    }

    #[test]
    fn a_good_row_becomes_a_registration_with_tags_and_an_absolute_key() {
        let r = rows(&format!(
            "{HEADER}web-1,10.0.0.5,22,monitor,keys/k,prod;web\n"
        ));
        let row = r[0].clone().expect("row");
        assert_eq!(row.line, 2);
        assert_eq!(row.server.name, "web-1");
        assert_eq!(row.server.port, 22);
        assert_eq!(row.server.key_path, "/inv/keys/k");
        assert_eq!(row.server.tags, vec!["prod", "web"]);
    }

    #[test]
    fn columns_may_come_in_any_order_and_quoted() {
        let r = rows("tags,key_path,user,port,host,name\n\"\",\"/k,1\",u,2222,h,n\n");
        let row = r[0].clone().expect("row");
        assert_eq!(row.server.key_path, "/k,1");
        assert!(row.server.tags.is_empty());
    }

    #[test]
    fn a_bad_port_is_reported_with_its_line_and_field() {
        let r = rows(&format!("{HEADER}\na,h,22,u,/k,\nb,h,70000,u,/k,\n"));
        let e = r[1].clone().expect_err("bad port");
        assert_eq!(e.line, 4);
        assert_eq!(e.field, "port");
        assert!(e.to_string().starts_with("line 4: port: '70000'"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_field() {
        let r = rows(&format!("{HEADER}bad name,h,22,u,/k,\na,h,22,u,/k,x y\n"));
        assert_eq!(r[0].clone().expect_err("name").field, "name");
        assert_eq!(r[1].clone().expect_err("tag").field, "tags");
    }

    #[test]
    fn a_row_with_too_few_fields_is_an_error() {
        let r = rows(&format!("{HEADER}a,h,22\n"));
        assert_eq!(r[0].clone().expect_err("short").field, "row");
    }

    #[test]
    fn a_missing_or_unknown_column_is_named() {
        let e = parse("name,host,port,user,key_path\n", Path::new("/")).expect_err("missing");
        assert!(e.to_string().contains("'tags'"), "{e}");
        let e =
            parse("name,host,port,user,key_path,tags,colour\n", Path::new("/")).expect_err("extra");
        assert!(e.to_string().contains("'colour'"), "{e}");
        assert!(parse("", Path::new("/")).is_err());
    }

    #[test]
    fn a_quoted_field_may_span_lines_and_line_numbers_follow() {
        let r = records("a,\"b\nc\"\nd,e\n").expect("csv");
        assert_eq!(r[0], (1, vec!["a".to_string(), "b\nc".to_string()]));
        assert_eq!(r[1].0, 3);
        assert!(matches!(
            records("a,\"b\n"),
            Err(ImportError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn crlf_and_a_bom_are_accepted() {
        let r = parse(
            "\u{feff}name,host,port,user,key_path,tags\r\na,h,22,u,/k,t\r\n",
            Path::new("/"),
        )
        .expect("ok");
        assert_eq!(r[0].clone().expect("row").server.tags, vec!["t"]);
    }
}
