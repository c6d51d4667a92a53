"""The Docker runtime's images: present on the host, or pulled with the route's credentials (plain
ones, or an ECR login from the AWS SDK, renewed before it expires). Blocking: called in a thread."""

from __future__ import annotations

import base64
import re
import time

import docker
import docker.errors
from docker.utils import parse_repository_tag

from watcher.aws import client as aws_client
from watcher.config.schema import AwsConfig
from watcher.errors import PermanentError, RetryableError
from watcher.handlers.container.options import ContainerOptions
from watcher.logs import get_logger, register_secret

_log = get_logger("watcher.handlers.container")
_ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")


def ecr_registry(image: str) -> tuple[str, str] | None:
    """(account id, region) when the image lives in a private ECR registry."""
    match = _ECR_HOST.match(image)
    return (match.group(1), match.group(2)) if match else None


def docker_error(exc: Exception, doing: str) -> Exception:
    """A Docker SDK failure as one of ours: the engine's 4xx answers are permanent (a bad image
    reference or option), everything else (engine down, 5xx, socket errors) is retryable."""
    if isinstance(exc, docker.errors.APIError) and exc.is_client_error() and exc.status_code != 409:
        return PermanentError(f"docker refused to {doing}: {exc.explanation or exc}")
    return RetryableError(f"docker could not {doing}: {exc}")


class ImageSource:
    def __init__(self, options: ContainerOptions, aws: AwsConfig) -> None:
        assert options.image is not None  # validated: the docker runtime requires an image
        self._options = options
        self._image = options.image
        self._aws = aws
        self._ecr_auth: tuple[float, dict[str, str]] | None = None
        if options.registry_auth is not None and options.registry_auth.password:
            register_secret(options.registry_auth.password)  # masked wherever it might show up

    def ensure(self, client: docker.DockerClient) -> None:
        """Make sure the image is on the host, pulling it as the route's ``pull`` policy says."""
        if self._options.pull != "always":
            try:
                client.images.get(self._image)
                return
            except docker.errors.ImageNotFound:
                if self._options.pull == "never":
                    raise PermanentError(f"image {self._image} is not on this host and pull is never") from None
            except docker.errors.DockerException as exc:
                raise docker_error(exc, f"inspect image {self._image}") from None
        repository, tag = parse_repository_tag(self._image)
        started = time.perf_counter()
        try:
            client.images.pull(repository, tag=tag or "latest", auth_config=self._registry_auth())
        except docker.errors.DockerException as exc:
            raise docker_error(exc, f"pull image {self._image}") from None
        _log.info("image pulled", image=self._image, seconds=round(time.perf_counter() - started, 1))

    def _registry_auth(self) -> dict[str, str] | None:
        auth = self._options.registry_auth
        if auth is not None and not auth.ecr:
            return {"username": auth.username or "", "password": auth.password or ""}
        ecr = ecr_registry(self._image)
        if ecr is None:
            if auth is not None and auth.ecr:
                raise PermanentError(f"registry_auth is ecr, but {self._image} is not an ECR image")
            return None
        if self._ecr_auth is not None and self._ecr_auth[0] > time.time():
            return self._ecr_auth[1]
        account, region = ecr
        aws = AwsConfig(region=region, endpoint_url=None, profile=self._aws.profile)
        try:
            data = aws_client(aws, "ecr").get_authorization_token(registryIds=[account])["authorizationData"][0]
        except Exception as exc:  # botocore's errors: no credentials, denied, network
            raise RetryableError(f"cannot get an ECR login for {self._image}: {exc}") from None
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        register_secret(password)
        credentials = {"username": username, "password": password}
        expires = data["expiresAt"].timestamp() - 300 if "expiresAt" in data else time.time() + 3600
        self._ecr_auth = (expires, credentials)
        return credentials
