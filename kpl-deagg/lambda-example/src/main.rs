//! The Lambda function: `cargo lambda build --release -p kpl-deagg-lambda-example`, then deploy it with a
//! Kinesis event source mapping.

use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(kpl_deagg_lambda_example::handler)).await
}
