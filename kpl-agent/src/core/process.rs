//! The processing step between framing and delivery: where the Kinesis Agent's `dataProcessingOptions`
//! (CSVTOJSON, LOGTOJSON, SINGLELINE, ...) will plug in (issue 14). Today the only processor is
//! [`Processor::Identity`]; a configuration with processors is refused rather than ignored.

use bytes::Bytes;

/// What a processor made of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Send this.
    Send(Bytes),
    /// Send nothing; the record's bytes count as delivered (the agent's "skipped" records).
    Skip,
}

/// A processing chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Processor {
    /// Records go out as framed.
    #[default]
    Identity,
}

impl Processor {
    /// Processes one record.
    pub fn process(&self, data: Bytes) -> Processed {
        match self {
            Processor::Identity => Processed::Send(data),
        }
    }
}
