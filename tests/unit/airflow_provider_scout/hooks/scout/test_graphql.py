"""The GraphQL documents the provider sends, validated against the types Scout publishes."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLSchema, build_schema, graphql_sync, parse, validate

from airflow_provider_scout.hooks.scout import graphql as scout_graphql
from airflow_provider_scout.hooks.scout.graphql import (
    ScoutGraphQLError,
    auth_error_status,
    goal_results_request,
    image_summaries_request,
    organization_status_request,
    parse_goal_results,
    parse_image_summaries,
    parse_organization_status,
)
from airflow_provider_scout.policy import PolicyResult, PolicyStatus
from scout_testing.stand_ins.scout_server import POLICY_KINDS, policy
from tests.support.scout import SCOUT_SCHEMA

SDL = SCOUT_SCHEMA
DIGEST = "sha256:" + "a" * 64


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(SDL.read_text())


def _documents() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(scout_graphql).items()
        if name.isupper() and isinstance(value, str) and value.lstrip().startswith(("query", "mutation"))
    }


def test_the_module_holds_the_documents_the_hook_uses() -> None:
    # No mutation: indexImage is undocumented (Scout's SDL types its repository as a String!).
    assert set(_documents()) == {
        "GOAL_RESULTS_BY_DIGESTS",
        "IMAGE_SUMMARIES_BY_DIGEST",
        "ORGANIZATION_STATUS",
        "TAGGED_IMAGES_BY_REPOSITORY",
    }


def test_the_sdl_carries_scouts_published_types() -> None:
    # Copied from docker/hub-mcp src/scout/genql/schema.graphql (extract_scout_schema.py):
    # the field types the documents rely on, as Scout declares them.
    published = build_schema(SDL.read_text())
    query = published.query_type
    assert query is not None
    summaries = query.fields["imageSummariesByDigest"]
    assert str(summaries.type) == "[SdImageSummary!]!"
    assert {name: str(arg.type) for name, arg in summaries.args.items()} == {
        "context": "Context!",
        "digests": "[String!]!",
        "repository": "ScRepositoryInput",
    }
    assert str(query.fields["organizationStatus"].type) == "ScOrganizationStatus!"
    goals = query.fields["goalResultsByDigests"]
    assert str(goals.type) == "[ScPolicyImage!]!"
    assert {name: str(arg.type) for name, arg in goals.args.items()} == {
        "context": "Context!",
        "query": "GoalResultsDigestsQuery!",
    }
    kinds = {kind.name for kind in published.get_possible_types(published.get_type("BaseScPolicy"))}
    assert kinds == {"ScBooleanPolicy", "ScGenericPolicy", "ScLicencePolicy", "ScVulnerabilityPolicy"}
    assert published.mutation_type is None


@pytest.mark.parametrize("name", sorted(_documents()))
def test_document_is_valid_against_the_scout_sdl(schema: GraphQLSchema, name: str) -> None:
    errors = validate(schema, parse(_documents()[name]))
    assert errors == [], [e.message for e in errors]


def test_the_sdl_rejects_a_field_scout_does_not_have(schema: GraphQLSchema) -> None:
    # Guards the guard: validation against this SDL really fails on unknown fields.
    bad = "query q($c: Context!) { organizationStatus(context: $c) { hasImageAnalysisEnabled isPremium } }"
    assert [e.message for e in validate(schema, parse(bad))] == [
        "Cannot query field 'isPremium' on type 'ScOrganizationStatus'."
    ]


def _execute(schema: GraphQLSchema, request: dict[str, Any], root: dict[str, Any]) -> Any:
    return graphql_sync(
        schema,
        request["query"],
        root_value=root,
        variable_values=request["variables"],
        operation_name=request["operationName"],
    )


def test_image_summaries_request_variables_fit_the_schema_and_reach_the_resolver(
    schema: GraphQLSchema,
) -> None:
    seen: dict[str, Any] = {}

    def resolver(_info: Any, **args: Any) -> list[dict[str, Any]]:
        seen.update(args)
        return [{"digest": DIGEST, "sbomState": "INDEXING", "vulnerabilityReport": None}]

    request = image_summaries_request("acme", [DIGEST], "example.jfrog.io", "docker-local/team/app")
    result = _execute(schema, request, {"imageSummariesByDigest": resolver})
    assert result.errors is None
    assert seen == {
        "context": {"organization": "acme"},
        "digests": [DIGEST],
        "repository": {"hostName": "example.jfrog.io", "repoName": "docker-local/team/app"},
    }
    assert parse_image_summaries({"data": result.data})[DIGEST].sbom_state == "INDEXING"


def test_organization_status_request_fits_the_schema(schema: GraphQLSchema) -> None:
    result = _execute(
        schema,
        organization_status_request("acme"),
        {
            "organizationStatus": lambda _info, context: {
                "hasImageAnalysisEnabled": True,
                "hasAnalyzedImages": False,
                "hasEverAnalyzedImages": False,
            }
        },
    )
    assert result.errors is None
    status = parse_organization_status({"data": result.data})
    assert (status.has_image_analysis_enabled, status.has_analyzed_images) == (True, False)


def test_parse_image_summaries_keeps_counts_and_null_reports() -> None:
    report = {"critical": 1, "high": 2, "medium": 3, "low": 4, "unspecified": 0, "total": 10}
    other = "sha256:" + "b" * 64
    answer = {
        "data": {
            "imageSummariesByDigest": [
                {"digest": DIGEST, "sbomState": "INDEXED", "vulnerabilityReport": report},
                {"digest": other, "sbomState": "INDEXING", "vulnerabilityReport": None},
            ]
        }
    }
    summaries = parse_image_summaries(answer)
    assert summaries[DIGEST].is_indexed and summaries[DIGEST].vulnerabilities == report
    assert not summaries[other].is_indexed and summaries[other].vulnerabilities is None
    assert summaries[DIGEST].to_dict() == {
        "digest": DIGEST,
        "sbom_state": "INDEXED",
        "vulnerabilities": report,
    }


def test_graphql_errors_in_an_answer_become_a_clear_error() -> None:
    answer = {"data": None, "errors": [{"message": "you are not a member of organization 'acme'"}]}
    with pytest.raises(
        ScoutGraphQLError, match="Scout rejected imageSummariesByDigest: you are not a member"
    ):
        parse_image_summaries(answer)


def test_an_answer_without_the_operation_is_an_error() -> None:
    with pytest.raises(ScoutGraphQLError, match=r"no data\.organizationStatus"):
        parse_organization_status({"data": {}})


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"data": None, "errors": [{"message": "unauthorized", "extensions": {"status": 401}}]}, 401),
        ({"data": None, "errors": [{"message": "x"}, {"message": "y", "extensions": {"status": 403}}]}, 403),
        ({"data": None, "errors": [{"message": "bad field"}]}, None),
        ({"data": {"organizationStatus": None}}, None),
    ],
)
def test_auth_errors_are_found_in_the_envelope(answer: dict[str, Any], status: int | None) -> None:
    assert auth_error_status(answer) == status


def test_tagged_images_picks_the_exact_tag_and_reads_a_null_result_as_unknown() -> None:
    digest = "sha256:" + "a" * 64
    answer = {
        "data": {
            "taggedImagesByRepository": {
                "tags": [
                    {"name": "1.0-rc", "digest": "sha256:" + "b" * 64},
                    {"name": "1.0", "digest": digest},
                ]
            }
        }
    }
    assert scout_graphql.parse_tagged_images(answer, "1.0") == digest
    assert scout_graphql.parse_tagged_images(answer, "1") is None
    # ScTaggedImagesResult is nullable: a repository Scout never saw.
    assert scout_graphql.parse_tagged_images({"data": {"taggedImagesByRepository": None}}, "1.0") is None
    with pytest.raises(scout_graphql.ScoutGraphQLError, match=r"has no data\.taggedImagesByRepository"):
        scout_graphql.parse_tagged_images({"data": {}}, "1.0")
    with pytest.raises(scout_graphql.ScoutGraphQLError, match=r"has no data\.imageSummariesByDigest"):
        scout_graphql.parse_image_summaries({"data": {"imageSummariesByDigest": None}})


def test_goal_results_request_fits_the_schema_and_every_policy_kind_is_read(schema: GraphQLSchema) -> None:
    seen: dict[str, Any] = {}
    policies = [
        policy("ScBooleanPolicy", "Default non-root user", 1, definition="non-root", label="Non-compliant"),
        policy("ScBooleanPolicy", "Supply chain attestations", 0, definition="attestations"),
        policy("ScGenericPolicy", None, 0, definition="outdated-base", configuration="No outdated base"),
        policy("ScLicencePolicy", "No AGPL v3 licenses", 2, definition="copyleft", stale=True),
        policy("ScVulnerabilityPolicy", "No fixable critical CVEs", None, definition="fixable-cves"),
    ]
    assert {p["__typename"] for p in policies} == set(POLICY_KINDS)

    def resolver(_info: Any, **args: Any) -> list[dict[str, Any]]:
        seen.update(args)
        return [{"digest": DIGEST, "policies": policies}]

    result = _execute(schema, goal_results_request("acme", [DIGEST]), {"goalResultsByDigests": resolver})
    assert result.errors is None
    assert seen == {"context": {"organization": "acme"}, "query": {"digests": [DIGEST]}}
    assert parse_goal_results({"data": result.data}) == {
        DIGEST: (
            PolicyResult("Default non-root user", "non-root", PolicyStatus.NOT_MET, 1, "Non-compliant"),
            PolicyResult("Supply chain attestations", "attestations", PolicyStatus.MET, 0, ""),
            # No displayName: the configuration's name is what Scout shows.
            PolicyResult("No outdated base", "outdated-base", PolicyStatus.MET, 0, ""),
            PolicyResult("No AGPL v3 licenses", "copyleft", PolicyStatus.NOT_MET, 2, "", stale=True),
            PolicyResult("No fixable critical CVEs", "fixable-cves", PolicyStatus.NO_DATA),
        )
    }


def test_goal_results_decide_by_the_typed_fields_not_the_label() -> None:
    # statusLabel's values are not published: a label saying one thing decides nothing.
    answer = {
        "data": {
            "goalResultsByDigests": [
                {
                    "digest": DIGEST,
                    "policies": [
                        {
                            "definitionName": "d",
                            "configurationName": "c",
                            "displayName": "P",
                            "evaluated": True,
                            "currentResult": {"statusLabel": "Compliant", "deviationCount": 4},
                        },
                        {
                            "definitionName": "d",
                            "configurationName": "c",
                            "displayName": "Q",
                            "evaluated": True,
                            "currentResult": None,
                        },
                    ],
                }
            ]
        }
    }
    (p, q) = parse_goal_results(answer)[DIGEST]
    assert (p.status, p.deviations, p.label) == (PolicyStatus.NOT_MET, 4, "Compliant")
    assert q.status is PolicyStatus.NO_DATA


def test_policy_names_and_labels_scout_chose_are_shown_never_obeyed(schema: GraphQLSchema) -> None:
    # They reach the summary, the task log and asset events: a forged line or a terminal
    # escape in a name Scout (or whoever answers as Scout) chose must arrive inert. The answer
    # is what the published SDL lets a server send.
    hostile = policy(
        "ScVulnerabilityPolicy",
        "No root\nERROR forged \x1b]8;;https://evil.example\x07link" + "x" * 500,
        1,
        definition="def\x1b[2J",
        label="Bad\rlabel\x07",
    )
    root = {"goalResultsByDigests": lambda _info, **_: [{"digest": DIGEST, "policies": [hostile]}]}
    result = _execute(schema, goal_results_request("acme", [DIGEST]), root)
    assert result.errors is None
    answer = {"data": result.data}
    ((result,)) = parse_goal_results(answer)[DIGEST]
    assert result.name.startswith("No root ERROR forged link") and len(result.name) == 200
    assert (result.definition, result.label) == ("def", "Bad label")


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ({"policies": []}, "an image without a digest"),
        ({"digest": DIGEST}, f"entry for {DIGEST} has no policies list"),
        ({"digest": DIGEST, "policies": [{"evaluated": True}]}, "lacks its definitionName"),
        (
            {
                "digest": DIGEST,
                "policies": [
                    {
                        "definitionName": "d",
                        "configurationName": "c",
                        "evaluated": True,
                        "currentResult": {"statusLabel": "x"},
                    }
                ],
            },
            "policy 'c' of .* has no deviationCount",
        ),
    ],
)
def test_a_goal_results_answer_without_the_fields_asked_for_is_an_error(
    entry: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ScoutGraphQLError, match=complaint):
        parse_goal_results({"data": {"goalResultsByDigests": [entry]}})
