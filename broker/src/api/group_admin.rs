//! DescribeGroups, ListGroups and DeleteGroups for the groups this broker
//! coordinates (members in memory and persisted, offsets in the coordinator).

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::groups::owns;
use super::Broker;
use crate::group::GroupState;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

pub async fn describe(
    broker: &Arc<Broker>,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in req.groups {
        let id = g.0.to_string();
        let mut out = DescribedGroup::default().with_group_id(g.clone());
        if let Err(e) = owns(broker, &id) {
            groups.push(out.with_error_code(e.code()).with_group_state(s("Dead")));
            continue;
        }
        let Some(summary) = broker.groups.describe(id.clone()).await else {
            groups.push(out.with_error_code(ResponseError::CoordinatorNotAvailable.code()));
            continue;
        };
        let mut state = summary.state;
        // A group known only by its committed offsets is Empty, not Dead.
        if state == GroupState::Dead
            && broker
                .groups
                .fetch_all(&id)
                .await
                .is_ok_and(|o| !o.is_empty())
        {
            state = GroupState::Empty;
        }
        out.group_state = s(state.as_str());
        out.protocol_type = s(summary.protocol_type);
        out.protocol_data = s(summary.protocol);
        out.members = summary
            .members
            .into_iter()
            .map(|m| {
                let mut dm = DescribedGroupMember::default()
                    .with_member_id(s(m.member_id))
                    .with_client_id(s(m.client_id))
                    .with_client_host(s(m.client_host))
                    .with_member_metadata(m.metadata)
                    .with_member_assignment(m.assignment);
                if version >= 4 {
                    dm.group_instance_id = m.group_instance_id.map(s);
                }
                dm
            })
            .collect();
        groups.push(out);
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn list(
    broker: &Arc<Broker>,
    req: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let states = req.states_filter.iter().map(|f| f.to_string()).collect();
    let groups = broker
        .groups
        .all_groups(states)
        .await
        .into_iter()
        .map(|g| {
            let mut lg = ListedGroup::default()
                .with_group_id(GroupId(s(g.group_id)))
                .with_protocol_type(s(g.protocol_type));
            if version >= 4 {
                lg.group_state = s(g.state.as_str());
            }
            lg
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub async fn delete(broker: &Arc<Broker>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for g in req.groups_names {
        let id = g.0.to_string();
        let outcome = match owns(broker, &id) {
            Ok(()) => broker.groups.delete(id).await,
            Err(e) => Err(e),
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(outcome.err().map_or(0, |e| e.code())),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
