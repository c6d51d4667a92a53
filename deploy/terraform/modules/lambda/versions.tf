terraform {
  # 1.9: a variable's validation may read other variables (the visibility timeout against the
  # function's timeout).
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}
