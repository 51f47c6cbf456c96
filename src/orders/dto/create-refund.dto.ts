import { IsInt, IsOptional, Max, Min } from 'class-validator';

export class CreateRefundDto {
  /** Minor units; default: everything not yet refunded. */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(99_999_999)
  amount?: number;
}
