//! The sqlx plumbing under the statements: what the core asks of a database ([`Db`], bounds
//! written once), the values it binds, where a statement runs, and reading a row.

use std::{fmt, future::Future, marker::PhantomData};

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row as _, Transaction, Type, ValueRef};
use wallet_traits::{Error, ErrorKind, Result};

use crate::dialect::{render, Dialect};

/// A row of the dialect's database.
pub(crate) type Row<D> = <<D as Dialect>::Database as sqlx::Database>::Row;

/// What the core asks of an sqlx database: running a statement with [`Value`]s bound and reading
/// columns. Implemented for every database whose driver has the encodings and decodings needed
/// (SQLite's and PostgreSQL's do), so the sqlx bounds are written once, here, instead of on every
/// generic impl.
pub trait Db: sqlx::Database {
    /// `sql` with `args` bound to `$1`, `$2`, ...
    fn query<'q>(sql: &'q str, args: Vec<Value<'q>>) -> sqlx::query::Query<'q, Self, Self::Arguments<'q>>;

    /// Runs a statement.
    fn execute<'q>(
        conn: &'q mut Self::Connection,
        sql: &'q str,
        args: Vec<Value<'q>>,
    ) -> impl Future<Output = sqlx::Result<Self::QueryResult>> + Send + 'q;

    /// Runs a query and returns its first row, if any.
    fn fetch_optional<'q>(
        conn: &'q mut Self::Connection,
        sql: &'q str,
        args: Vec<Value<'q>>,
    ) -> impl Future<Output = sqlx::Result<Option<Self::Row>>> + Send + 'q;

    /// Runs a query and returns its rows.
    fn fetch_all<'q>(
        conn: &'q mut Self::Connection,
        sql: &'q str,
        args: Vec<Value<'q>>,
    ) -> impl Future<Output = sqlx::Result<Vec<Self::Row>>> + Send + 'q;

    /// A text column.
    fn text(row: &Self::Row, column: &str) -> sqlx::Result<String>;

    /// A text column that may be NULL.
    fn opt_text(row: &Self::Row, column: &str) -> sqlx::Result<Option<String>>;

    /// A binary column.
    fn bytes(row: &Self::Row, column: &str) -> sqlx::Result<Vec<u8>>;

    /// A binary column that may be NULL.
    fn opt_bytes(row: &Self::Row, column: &str) -> sqlx::Result<Option<Vec<u8>>>;

    /// An integer column, 32-bit columns widened.
    fn int(row: &Self::Row, column: &str) -> sqlx::Result<i64>;

    /// A boolean column.
    fn boolean(row: &Self::Row, column: &str) -> sqlx::Result<bool>;
}

impl<DB> Db for DB
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> i32: Decode<'r, DB> + Type<DB>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
{
    fn query<'q>(sql: &'q str, args: Vec<Value<'q>>) -> sqlx::query::Query<'q, Self, Self::Arguments<'q>> {
        args.into_iter().fold(sqlx::query(sql), |q, arg| match arg {
            Value::Text(v) => q.bind(v),
            Value::Bytes(v) => q.bind(v),
            Value::Int(v) => q.bind(v),
            Value::Int32(v) => q.bind(v),
            Value::Bool(v) => q.bind(v),
        })
    }

    fn execute<'q>(
        conn: &'q mut Self::Connection,
        sql: &'q str,
        args: Vec<Value<'q>>,
    ) -> impl Future<Output = sqlx::Result<Self::QueryResult>> + Send + 'q {
        conn.execute(Self::query(sql, args))
    }

    fn fetch_optional<'q>(
        conn: &'q mut Self::Connection,
        sql: &'q str,
        args: Vec<Value<'q>>,
    ) -> impl Future<Output = sqlx::Result<Option<Self::Row>>> + Send + 'q {
        conn.fetch_optional(Self::query(sql, args))
    }

    fn fetch_all<'q>(
        conn: &'q mut Self::Connection,
        sql: &'q str,
        args: Vec<Value<'q>>,
    ) -> impl Future<Output = sqlx::Result<Vec<Self::Row>>> + Send + 'q {
        conn.fetch_all(Self::query(sql, args))
    }

    fn text(row: &Self::Row, column: &str) -> sqlx::Result<String> {
        row.try_get(column)
    }

    fn opt_text(row: &Self::Row, column: &str) -> sqlx::Result<Option<String>> {
        row.try_get(column)
    }

    fn bytes(row: &Self::Row, column: &str) -> sqlx::Result<Vec<u8>> {
        row.try_get(column)
    }

    fn opt_bytes(row: &Self::Row, column: &str) -> sqlx::Result<Option<Vec<u8>>> {
        row.try_get(column)
    }

    fn int(row: &Self::Row, column: &str) -> sqlx::Result<i64> {
        // PostgreSQL's INTEGER columns decode only as i32; SQLite's integers all decode as i64.
        let narrow = row.try_get_raw(column).is_ok_and(|raw| {
            let ty = raw.type_info();
            !raw.is_null() && !<i64 as Type<DB>>::compatible(&ty) && <i32 as Type<DB>>::compatible(&ty)
        });
        if narrow {
            row.try_get::<i32, _>(column).map(i64::from)
        } else {
            row.try_get(column)
        }
    }

    fn boolean(row: &Self::Row, column: &str) -> sqlx::Result<bool> {
        row.try_get(column)
    }
}

/// A value bound to a statement parameter, typed so that a NULL still has its column's type.
#[derive(Clone, Copy)]
pub enum Value<'a> {
    /// TEXT.
    Text(Option<&'a str>),
    /// BLOB or BYTEA.
    Bytes(Option<&'a [u8]>),
    /// A 64-bit INTEGER or BIGINT.
    Int(Option<i64>),
    /// A 32-bit INTEGER (PostgreSQL's INTEGER columns take no wider value).
    Int32(i32),
    /// BOOLEAN (an INTEGER 0 or 1 in SQLite).
    Bool(bool),
}

impl fmt::Debug for Value<'_> {
    // The kind only: values are sealed records and wallet data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text(_) => "Text",
            Self::Bytes(_) => "Bytes",
            Self::Int(_) => "Int",
            Self::Int32(_) => "Int32",
            Self::Bool(_) => "Bool",
        })
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Self::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Self::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Self::Bytes(Some(v))
    }
}

impl<'a> From<Option<&'a [u8]>> for Value<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Self::Bytes(v)
    }
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        Self::Int(v)
    }
}

impl From<i32> for Value<'_> {
    fn from(v: i32) -> Self {
        Self::Int32(v)
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

/// Where a statement runs: the pool (on a connection of its own, the statement its own
/// transaction) or an open transaction.
pub(crate) enum On<'c, DB: sqlx::Database> {
    Pool(&'c Pool<DB>),
    Tx(&'c mut DB::Connection),
}

impl<'c, DB: sqlx::Database> From<&'c Pool<DB>> for On<'c, DB> {
    fn from(pool: &'c Pool<DB>) -> Self {
        Self::Pool(pool)
    }
}

impl<'c, DB: sqlx::Database> From<&'c mut Transaction<'_, DB>> for On<'c, DB> {
    fn from(tx: &'c mut Transaction<'_, DB>) -> Self {
        Self::Tx(&mut **tx)
    }
}

/// A rendered statement and its arguments, built up and then run [`On`] the pool or a transaction.
pub(crate) struct Statement<'a, D> {
    sql: String,
    args: Vec<Value<'a>>,
    namespace: Option<&'a str>,
    dialect: PhantomData<D>,
}

impl<'a, D: Dialect> Statement<'a, D> {
    /// `template` (see [`render`]) for a store whose rows carry `namespace`.
    pub(crate) fn new(template: &str, namespace: Option<&'a str>) -> Self {
        let rendered = render::<D>(template, namespace.is_some());
        let args = if rendered.binds_namespace { vec![Value::Text(namespace)] } else { Vec::new() };
        Self { sql: rendered.sql, args, namespace, dialect: PhantomData }
    }

    /// Binds the next of the template's parameters.
    pub(crate) fn bind(mut self, value: impl Into<Value<'a>>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Puts `template` in front: text without parameters, such as a column list.
    pub(crate) fn prefixed(&self, template: &str) -> Self {
        let mut sql = render::<D>(template, self.namespace.is_some()).sql;
        sql.push_str(&self.sql);
        Self { sql, args: self.args.clone(), namespace: self.namespace, dialect: PhantomData }
    }

    /// Appends `template`: text without parameters.
    pub(crate) fn push(&mut self, template: &str) -> &mut Self {
        self.sql.push_str(&render::<D>(template, self.namespace.is_some()).sql);
        self
    }

    /// Appends a parameter bound to `value`.
    pub(crate) fn push_bind(&mut self, value: impl Into<Value<'a>>) -> &mut Self {
        self.args.push(value.into());
        self.sql.push_str(&format!("${}", self.args.len()));
        self
    }

    /// Runs the statement; the number of rows it changed.
    pub(crate) async fn execute<'c>(self, on: impl Into<On<'c, D::Database>>) -> sqlx::Result<u64> {
        let done = match on.into() {
            On::Pool(pool) => D::Database::execute(&mut *pool.acquire().await?, &self.sql, self.args).await,
            On::Tx(conn) => D::Database::execute(conn, &self.sql, self.args).await,
        }?;
        Ok(D::rows_affected(&done))
    }

    /// Runs the query; its first row, if any.
    pub(crate) async fn fetch_optional<'c>(self, on: impl Into<On<'c, D::Database>>) -> sqlx::Result<Option<Row<D>>> {
        match on.into() {
            On::Pool(pool) => D::Database::fetch_optional(&mut *pool.acquire().await?, &self.sql, self.args).await,
            On::Tx(conn) => D::Database::fetch_optional(conn, &self.sql, self.args).await,
        }
    }

    /// Runs a query that always returns a row (`COUNT`, `SUM`).
    pub(crate) async fn fetch_one<'c>(self, on: impl Into<On<'c, D::Database>>) -> sqlx::Result<Row<D>> {
        self.fetch_optional(on).await?.ok_or(sqlx::Error::RowNotFound)
    }

    /// Runs the query; its rows.
    pub(crate) async fn fetch_all<'c>(self, on: impl Into<On<'c, D::Database>>) -> sqlx::Result<Vec<Row<D>>> {
        match on.into() {
            On::Pool(pool) => D::Database::fetch_all(&mut *pool.acquire().await?, &self.sql, self.args).await,
            On::Tx(conn) => D::Database::fetch_all(conn, &self.sql, self.args).await,
        }
    }
}

/// Reads the columns of one row, reporting anything that does not parse as a corrupted record.
pub(crate) struct RowReader<'a, D: Dialect> {
    pub(crate) row: &'a Row<D>,
    /// The record kind, for the message: "share", "output", ...
    pub(crate) what: &'static str,
    pub(crate) key: &'a dyn fmt::Display,
    pub(crate) namespace: Option<&'a str>,
}

impl<D: Dialect> RowReader<'_, D> {
    pub(crate) fn corrupted(&self, column: &'static str) -> Error {
        let e = Error::new(
            ErrorKind::Corrupted,
            format!("a stored {} row does not parse; {}", self.what, D::CORRUPTED_HINT),
        )
        .with_context("backend", D::BACKEND);
        with_namespace(e, self.namespace).with_context("key", self.key).with_context("column", column)
    }

    fn read<T>(&self, column: &'static str, value: sqlx::Result<T>) -> Result<T> {
        // The decode error names the column and types, never the value.
        value.map_err(|e| self.corrupted(column).with_source(e))
    }

    pub(crate) fn text(&self, column: &'static str) -> Result<String> {
        self.read(column, D::Database::text(self.row, column))
    }

    pub(crate) fn opt_text(&self, column: &'static str) -> Result<Option<String>> {
        self.read(column, D::Database::opt_text(self.row, column))
    }

    pub(crate) fn bytes(&self, column: &'static str) -> Result<Vec<u8>> {
        self.read(column, D::Database::bytes(self.row, column))
    }

    pub(crate) fn opt_bytes(&self, column: &'static str) -> Result<Option<Vec<u8>>> {
        self.read(column, D::Database::opt_bytes(self.row, column))
    }

    /// A fixed-size binary column: a txid, an execution id.
    pub(crate) fn array<const N: usize>(&self, column: &'static str) -> Result<[u8; N]> {
        self.bytes(column)?.try_into().map_err(|_| self.corrupted(column))
    }

    pub(crate) fn opt_array<const N: usize>(&self, column: &'static str) -> Result<Option<[u8; N]>> {
        self.opt_bytes(column)?.map(|v| v.try_into().map_err(|_| self.corrupted(column))).transpose()
    }

    /// An integer column into `T`, which must hold its value.
    pub(crate) fn int<T: TryFrom<i64>>(&self, column: &'static str) -> Result<T> {
        T::try_from(self.read(column, D::Database::int(self.row, column))?).map_err(|_| self.corrupted(column))
    }

    pub(crate) fn boolean(&self, column: &'static str) -> Result<bool> {
        self.read(column, D::Database::boolean(self.row, column))
    }

    /// A JSON array of strings (an aggregate of tags or labels); NULL is an empty one.
    pub(crate) fn strings(&self, column: &'static str) -> Result<Vec<String>> {
        match self.opt_text(column)? {
            None => Ok(Vec::new()),
            Some(json) => serde_json::from_str(&json).map_err(|_| self.corrupted(column)),
        }
    }
}

/// `e` with the store's namespace in its context, where it has one.
pub(crate) fn with_namespace(e: Error, namespace: Option<&str>) -> Error {
    match namespace {
        Some(namespace) => e.with_context("namespace", namespace),
        None => e,
    }
}

/// One opened database: its pool and dialect, and what every statement of a store needs.
pub(crate) struct Sql<D: Dialect> {
    pub(crate) pool: Pool<D::Database>,
    pub(crate) dialect: D,
}

impl<D: Dialect> Sql<D> {
    pub(crate) fn statement(&self, template: &str) -> Statement<'_, D> {
        Statement::new(template, self.dialect.namespace())
    }

    /// A failed statement: the dialect's error, with the namespace.
    pub(crate) fn fail(&self, e: sqlx::Error, action: &str) -> Error {
        with_namespace(self.dialect.error(e, action), self.dialect.namespace())
    }

    pub(crate) fn reader<'a>(
        &'a self,
        row: &'a Row<D>,
        what: &'static str,
        key: &'a dyn fmt::Display,
    ) -> RowReader<'a, D> {
        RowReader { row, what, key, namespace: self.dialect.namespace() }
    }

    /// Starts a transaction with `begin` ([`Dialect::BEGIN_WRITE`] or [`Dialect::BEGIN_READ`]);
    /// dropping it uncommitted rolls it back.
    pub(crate) async fn begin(&self, begin: &'static str, action: &str) -> Result<Transaction<'static, D::Database>> {
        self.pool.begin_with(begin).await.map_err(|e| self.fail(e, action))
    }
}
