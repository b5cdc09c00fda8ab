//! What both backends share below the queries: the statement builder (numbered `$N`
//! placeholders, which SQLite and PostgreSQL both read), and the URLs of the two stores.

use std::fmt::Write as _;
use std::path::Path;

use sqlx::any::{Any, AnyArguments};
use sqlx::query::{Query, QueryScalar};
use sqlx::{Arguments as _, Encode, Type};

/// A statement built piece by piece with its bound values; sqlx's `QueryBuilder` writes `?`
/// for the Any driver, which PostgreSQL does not read.
pub(super) struct Builder<'a> {
    sql: String,
    args: AnyArguments<'a>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(init: impl Into<String>) -> Self {
        Self {
            sql: init.into(),
            args: AnyArguments::default(),
        }
    }

    pub(super) fn push(&mut self, sql: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.sql, "{sql}");
        self
    }

    /// Appends `$N` and binds `value` to it.
    pub(super) fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'a + Encode<'a, Any> + Type<Any>,
    {
        // Encoding into the Any driver's buffer only pushes the value: it cannot fail.
        let _ = self.args.add(value);
        let _ = write!(self.sql, "${}", self.args.len());
        self
    }

    /// Pieces joined by `sep`.
    pub(super) fn separated<'b>(&'b mut self, sep: &'static str) -> Separated<'b, 'a> {
        Separated {
            builder: self,
            sep,
            first: true,
        }
    }

    /// `VALUES (..), (..)`: one parenthesised group per item, filled by `each`.
    pub(super) fn push_values<I, F>(&mut self, items: I, mut each: F) -> &mut Self
    where
        I: IntoIterator,
        F: FnMut(Separated<'_, 'a>, I::Item),
    {
        self.push("values ");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push("(");
            each(self.separated(", "), item);
            self.push(")");
        }
        self
    }

    pub(super) fn build(&mut self) -> Query<'_, Any, AnyArguments<'_>> {
        sqlx::query_with(&self.sql, std::mem::take(&mut self.args))
    }

    pub(super) fn build_query_scalar<T>(&mut self) -> QueryScalar<'_, Any, T, AnyArguments<'_>>
    where
        (T,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        sqlx::query_scalar_with(&self.sql, std::mem::take(&mut self.args))
    }
}

/// An optional float to bind. sqlx 0.8's Any driver declares a null `f64` to PostgreSQL as
/// float4 (and a null `f32` as float8), and a statement it prepared with that null then
/// refuses the next call's `f64` ("incorrect binary data format"). A null bound as `f32`
/// is declared float8, as the column is.
pub(crate) struct Real(pub Option<f64>);

impl Type<Any> for Real {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <f64 as Type<Any>>::type_info()
    }
}

impl<'q> Encode<'q, Any> for Real {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        match self.0 {
            Some(v) => <f64 as Encode<'q, Any>>::encode_by_ref(&v, buf),
            None => <Option<f32> as Encode<'q, Any>>::encode_by_ref(&None, buf),
        }
    }
}

/// The last item per key, in the order of those last items. PostgreSQL refuses an upsert
/// that reaches one row twice in a statement; SQLite applies the rows in turn, so the last
/// one won there, and wins here on both.
pub(super) fn last_per_key<T, K: Eq + std::hash::Hash>(
    items: &[T],
    key: impl Fn(&T) -> K,
) -> Vec<&T> {
    let mut last = std::collections::HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        last.insert(key(item), i);
    }
    items
        .iter()
        .enumerate()
        .filter(|(i, item)| last.get(&key(item)) == Some(i))
        .map(|(_, item)| item)
        .collect()
}

/// A list inside a [`Builder`].
pub(super) struct Separated<'b, 'a> {
    builder: &'b mut Builder<'a>,
    sep: &'static str,
    first: bool,
}

impl<'a> Separated<'_, 'a> {
    fn next(&mut self) {
        if !self.first {
            self.builder.push(self.sep);
        }
        self.first = false;
    }

    pub(super) fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'a + Encode<'a, Any> + Type<Any>,
    {
        self.next();
        self.builder.push_bind(value);
        self
    }

    pub(super) fn push_unseparated(&mut self, sql: impl std::fmt::Display) -> &mut Self {
        self.builder.push(sql);
        self
    }
}

/// The Any driver's URL for a SQLite file, created when missing. The path is made absolute
/// and percent-encoded: sqlx parses the URL (a relative first segment would be read as a
/// host name) and decodes it back to the file name.
pub(super) fn sqlite_url(path: &Path) -> Result<String, std::io::Error> {
    let absolute = std::path::absolute(path)?;
    let text = absolute.to_str().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path is not valid UTF-8",
        )
    })?;
    let mut url = String::from("sqlite://");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            url.push(char::from(b));
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

/// `url` with its password replaced by `***`, for logs and errors.
pub(super) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return redact_query(url);
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let masked = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        user.to_owned()
    };
    redact_query(&format!("{scheme}://{masked}@{host}{tail}"))
}

/// A `password=` query parameter, the other place libpq URLs carry one.
fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// An error message from the driver, with the URL (should it quote it) redacted.
pub(super) fn redact_error(message: &str, url: &str) -> String {
    message.replace(url, &redact_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("postgres://fp:s3cret@db.example:5432/fleet"),
            "postgres://fp:***@db.example:5432/fleet"
        );
        assert_eq!(
            redact_url("postgresql://fp@db/fleet?sslmode=require&password=s3cret"),
            "postgresql://fp@db/fleet?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("postgres://fp:p%40ss@db/fleet"),
            "postgres://fp:***@db/fleet"
        );
        assert_eq!(redact_url("postgres://db/fleet"), "postgres://db/fleet");
    }

    #[test]
    fn sqlite_urls_keep_odd_file_names() {
        let url = sqlite_url(Path::new("/tmp/a dir/f?#%.db")).expect("url");
        assert_eq!(url, "sqlite:///tmp/a%20dir/f%3F%23%25.db?mode=rwc");
    }

    #[test]
    fn the_last_item_per_key_stays_in_order() {
        let items = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)];
        let kept: Vec<_> = last_per_key(&items, |(k, _)| *k)
            .into_iter()
            .copied()
            .collect();
        assert_eq!(kept, [("a", 3), ("c", 4), ("b", 5)]);
    }

    #[test]
    fn placeholders_are_numbered() {
        let mut q = Builder::new("insert into t (a, b) ");
        q.push_values([(1_i64, "x"), (2, "y")], |mut b, (n, s)| {
            b.push_bind(n).push_bind(s);
        });
        assert_eq!(q.sql, "insert into t (a, b) values ($1, $2), ($3, $4)");
    }
}
